import ClusterCore
import NIOCore
import NIOPosix
import Synchronization

/// Heartbeats over UDP, one socket per monitored interface bound to this member's address on it (so
/// a heartbeat leaves through that interface and a reply names the interface it came in on). A
/// socket whose address is not configured yet is bound again on the next send.
public final class UDPHeartbeats: HeartbeatTransport, Sendable {
    let port: Int
    let addresses: [InterfaceName: String]
    let channels = Mutex<[InterfaceName: any Channel]>([:])
    let deliver: @Sendable (ClusterRuntime.Event) -> Void

    /// `deliver` gets every datagram, unread, with the interface and the sender's address.
    public init(plan: ClusterPlan, port: Int, deliver: @escaping @Sendable (ClusterRuntime.Event) -> Void) {
        self.port = port
        var addresses: [InterfaceName: String] = [:]
        for interface in plan.interfaces { addresses[interface.name] = interface.localAddress }
        self.addresses = addresses
        self.deliver = deliver
    }

    /// Binds every interface's socket it can; the others are retried on send.
    public func bindAll() async {
        for interface in addresses.keys.sorted() { _ = await channel(interface) }
    }

    func channel(_ interface: InterfaceName) async -> (any Channel)? {
        if let bound = channels.withLock({ $0[interface] }) { return bound }
        guard let address = addresses[interface] else { return nil }
        let deliver = self.deliver
        do {
            let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(DatagramInbound(interface: interface, deliver: deliver))
                    }
                }
                .bind(host: address, port: port).get()
            let kept = channels.withLock { channels -> (any Channel)? in
                if let other = channels[interface] { return other }
                channels[interface] = channel
                return nil
            }
            if let kept {
                try? await channel.close()
                return kept
            }
            return channel
        } catch {
            return nil
        }
    }

    public func send(_ datagram: [UInt8], on interface: InterfaceName, to address: String) async {
        guard let channel = await channel(interface), let remote = try? SocketAddress(ipAddress: address, port: port) else { return }
        let envelope = AddressedEnvelope(remoteAddress: remote, data: channel.allocator.buffer(bytes: datagram))
        // A link that is down refuses the send: the core knows from the link state, nothing to do here.
        try? await channel.writeAndFlush(envelope)
    }

    public func closeAll() async {
        let all = channels.withLock { channels in
            defer { channels = [:] }
            return Array(channels.values)
        }
        for channel in all { try? await channel.close() }
    }
}

final class DatagramInbound: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let interface: InterfaceName
    let deliver: @Sendable (ClusterRuntime.Event) -> Void

    init(interface: InterfaceName, deliver: @escaping @Sendable (ClusterRuntime.Event) -> Void) {
        self.interface = interface
        self.deliver = deliver
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        // Oversized datagrams are dropped unread (the codec refuses them anyway).
        guard envelope.data.readableBytes <= HeartbeatCodec.datagramBytesMax else { return }
        deliver(.datagram(Array(envelope.data.readableBytesView), interface: interface, from: envelope.remoteAddress.ipAddress))
    }
}
