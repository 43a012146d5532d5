/// `HOST:PORT` of a server's SIC port; an IPv6 host may be given in brackets (`[::1]:18191`). One
/// parser for every place an address comes from: a flag, a gateway's state file, a server's announcement.
public struct SICAddress: Sendable, Hashable, CustomStringConvertible {
    public let host: String
    public let port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Nil unless `HOST:PORT` with a host and a port of 1 to 65535.
    public init?(argument: String) {
        guard let colon = argument.lastIndex(of: ":"), let port = Int(argument[argument.index(after: colon)...]),
            (1...65535).contains(port)
        else { return nil }
        var host = String(argument[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.host = host
        self.port = port
    }

    /// `host:port`, as servers announce and record it.
    public var description: String { "\(host):\(port)" }
}
