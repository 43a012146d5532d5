/// The dead timer's load stretch (ClusterXL's "Cluster Under Load", but shown in the status).
struct LoadStretchState: Sendable {
    var stretch: LoadStretch?
    /// When some member last reported load at or above the threshold.
    var lastHighLoadAtMilliseconds: UInt64?
    /// The longest stretch ran out under load: no new one until a quiet period passes.
    var blockedUntilQuiet = false
}

extension ClusterStateMachine {
    // MARK: - Built-in devices

    mutating func linkChanged(_ interface: InterfaceName, up: Bool) {
        guard let index = configuration.interfaceIndex(interface) else {
            pending.decide("ignored a link change of \(interface): not a monitored interface")
            return
        }
        guard linksUp[index] != up else {
            pending.note("link state unchanged")
            return
        }
        linksUp[index] = up
        pending.decide("\(interface) link is \(up ? "up" : "down")")
        refreshInterfaceCheck()
        // Peers learn at once, on the interfaces still up.
        heartbeatNow = true
    }

    mutating func refreshInterfaceCheck() {
        let down = configuration.monitoredInterfaces.indices.filter { !linksUp[$0] }.map { configuration.monitoredInterfaces[$0].name }
        let up = linksUp.count - down.count
        let detail =
            down.isEmpty
            ? "\(up) of \(linksUp.count) monitored interfaces up"
            : "\(down.joined(separator: ", ")) link down (\(up) of \(linksUp.count) monitored interfaces up)"
        devices.setBuiltIn(BuiltInDevice.interfaceCheck, down.isEmpty ? .ok : .problem, detail: detail, now: nowMilliseconds)
    }

    mutating func setPolicy(installed: Bool) {
        devices.setBuiltIn(
            BuiltInDevice.policy, installed ? .ok : .problem,
            detail: installed ? "a policy is installed" : "no policy is installed", now: nowMilliseconds)
    }

    /// A joining member needs the connection table of the member that forwards traffic. While one is
    /// active, it asks it (again after `fullSyncRetryMilliseconds`, or when another takes over) and
    /// stays DOWN. While only standbys are heard it waits (one of them takes over, and its table is the
    /// one to have). When no live member holds a table (none is active or standby) there is nothing to
    /// receive, and the device is ok.
    mutating func refreshFullSync() {
        guard case .pending(let requestedFrom, let requestedAt) = fullSync else { return }
        guard state != .initializing || startupComplete else { return }
        let view = makeView()
        guard let source = view.bestActive?.id else {
            guard !peers.contains(where: { isLive($0) && ($0.state == .standby || $0.state == .ready) }) else { return }
            fullSync = .done
            devices.setBuiltIn(
                BuiltInDevice.fullSync, .ok, detail: "no member held a connection table to receive",
                now: nowMilliseconds)
            pending.decide("no other member is active or standby: no connection table to synchronize (full sync not needed)")
            return
        }
        guard requestedFrom != source || nowMilliseconds - requestedAt >= limits.fullSyncRetryMilliseconds else { return }
        fullSync = .pending(requestedFrom: source, atMilliseconds: nowMilliseconds)
        devices.setBuiltIn(
            BuiltInDevice.fullSync, .initializing, detail: "waiting for the connection table from \(source)",
            now: nowMilliseconds)
        pending.effect(.requestFullSync(from: source))
        pending.decide("asked \(source) for the connection table (full sync)\(requestedFrom == nil ? "" : " again")")
    }

    mutating func fullSyncCompleted(from member: MemberID) {
        guard case .pending = fullSync else {
            pending.decide("ignored a full sync from \(member): none is awaited")
            return
        }
        fullSync = .done
        devices.setBuiltIn(BuiltInDevice.fullSync, .ok, detail: "connection table received from \(member)", now: nowMilliseconds)
        pending.decide("full sync from \(member) complete: the connection table is here")
    }

    // MARK: - Registered devices

    mutating func refuse(_ code: String, _ reason: String) {
        pending.effect(.commandRefused(code: code))
        pending.decide(reason)
    }

    mutating func registerDevice(_ name: String, state deviceState: DeviceState, timeoutMilliseconds: UInt64?) {
        guard isPrintableName(name, bytesMax: limits.nameBytesMax) else {
            return refuse("device-name-invalid", "refused to register a device: its name must be 1 to \(limits.nameBytesMax) bytes of printable text")
        }
        guard !BuiltInDevice.isReserved(name) else {
            return refuse("device-name-reserved", "refused to register \(name): a built-in device has that name")
        }
        guard devices.index(name) == nil else {
            return refuse("device-exists", "refused to register \(name): it is registered already (report its state instead)")
        }
        guard devices.registeredCount < limits.registeredDevicesMax else {
            return refuse("devices-full", "refused to register \(name): \(limits.registeredDevicesMax) devices are registered already")
        }
        if let timeout = timeoutMilliseconds, timeout == 0 || timeout > limits.deviceTimeoutMillisecondsMax {
            return refuse(
                "device-timeout-invalid",
                "refused to register \(name): its timeout must be 1 ms to \(milliseconds(limits.deviceTimeoutMillisecondsMax)), or none")
        }
        devices.devices.append(
            CriticalDevice(
                name: name, kind: .registered, reportedState: deviceState, detail: "registered",
                timeoutMilliseconds: timeoutMilliseconds, lastReportAtMilliseconds: nowMilliseconds))
        pending.decide(
            "registered critical device \(name) in state \(deviceState)" + (timeoutMilliseconds.map { ", report timeout \(milliseconds($0))" } ?? ""))
    }

    mutating func reportDevice(_ name: String, state deviceState: DeviceState) {
        guard let index = registeredIndex(name, action: "report") else { return }
        let before = devices.devices[index].state
        devices.devices[index].reportedState = deviceState
        devices.devices[index].missedDeadline = false
        devices.devices[index].lastReportAtMilliseconds = nowMilliseconds
        devices.devices[index].detail = "reported"
        if before != deviceState { pending.decide("critical device \(name) reports \(deviceState)") } else { pending.note("device report") }
    }

    mutating func unregisterDevice(_ name: String) {
        guard let index = registeredIndex(name, action: "unregister") else { return }
        devices.devices.remove(at: index)
        pending.decide("unregistered critical device \(name)")
    }

    mutating func registeredIndex(_ name: String, action: String) -> Int? {
        guard let index = devices.index(name) else {
            refuse("device-unknown", "refused to \(action) \(printable(name)): no such device")
            return nil
        }
        guard devices.devices[index].kind == .registered else {
            refuse("device-built-in", "refused to \(action) \(name): it is a built-in device")
            return nil
        }
        return index
    }

    /// A name that failed validation, shown without its control characters.
    func printable(_ name: String) -> String {
        let scalars = name.unicodeScalars.prefix(limits.nameBytesMax).map { $0.value < 0x20 || $0.value == 0x7f ? "?" : String($0) }
        return "\"" + scalars.joined() + "\""
    }

    // MARK: - Administrator

    /// Through the `admin_down` device, as `clusterXL_admin down` does. Refused when no other member is
    /// healthy to take over (the cluster would stop forwarding), unless forced.
    mutating func adminDown(force: Bool) {
        guard !devices.isAdminDown else { return pending.decide("this member is admin down already") }
        let view = makeView()
        let otherHealthy = view.bestCandidate != nil || (view.bestActive.map { $0.health == .healthy } ?? false)
        guard otherHealthy || force else {
            return refuse(
                "admin-down-leaves-no-healthy-member",
                "refused admin down: no other member is healthy to take over (force sets this member down anyway)")
        }
        devices.addAdminDown(now: nowMilliseconds)
        pending.decide("admin down\(otherHealthy ? "" : " (forced: no other member is healthy)")")
    }

    mutating func adminUp() {
        guard devices.isAdminDown else { return pending.decide("this member is not admin down") }
        devices.removeAdminDown()
        pending.decide("admin up")
    }

    // MARK: - Load

    mutating func reportLoad(of member: MemberID, percent: UInt8) {
        guard percent >= limits.loadThresholdPercent else { return }
        load.lastHighLoadAtMilliseconds = nowMilliseconds
        if load.stretch != nil {
            load.stretch?.lastHighLoadAtMilliseconds = nowMilliseconds
            return
        }
        guard !load.blockedUntilQuiet else { return }
        load.stretch = LoadStretch(
            sinceMilliseconds: nowMilliseconds, member: member, loadPercent: percent,
            thresholdPercent: limits.loadThresholdPercent, lastHighLoadAtMilliseconds: nowMilliseconds,
            endsAtLatestMilliseconds: nowMilliseconds + limits.loadStretchMaxMilliseconds)
        let reason = "\(deadTimerStatus)"
        pending.effect(.deadTimerChanged(deadTimerStatus, code: .deadTimerStretched, reason: reason))
        // The others stretch theirs on our next heartbeat: send it now.
        heartbeatNow = true
        pending.decide("\(EventCode.deadTimerStretched) \(reason)")
    }

    mutating func checkLoadStretch() {
        guard let stretch = load.stretch else {
            if load.blockedUntilQuiet, let last = load.lastHighLoadAtMilliseconds, nowMilliseconds - last >= limits.loadQuietMilliseconds {
                load.blockedUntilQuiet = false
            }
            return
        }
        let quiet = nowMilliseconds - stretch.lastHighLoadAtMilliseconds >= limits.loadQuietMilliseconds
        guard quiet || nowMilliseconds >= stretch.endsAtLatestMilliseconds else { return }
        load.stretch = nil
        load.blockedUntilQuiet = !quiet
        let lasted = milliseconds(nowMilliseconds - stretch.sinceMilliseconds)
        let reason =
            quiet
            ? "dead timer back to \(milliseconds(limits.deadTimerMilliseconds)) after \(lasted): no member reported load at or above \(limits.loadThresholdPercent)% during the last \(milliseconds(limits.loadQuietMilliseconds))"
            : "dead timer back to \(milliseconds(limits.deadTimerMilliseconds)) after the longest stretch (\(lasted)) although load stays at or above \(limits.loadThresholdPercent)%"
        pending.effect(.deadTimerChanged(deadTimerStatus, code: .deadTimerRestored, reason: reason))
        pending.decide("\(EventCode.deadTimerRestored) \(reason)")
    }

    public var deadTimerStatus: DeadTimerStatus {
        DeadTimerStatus(baseMilliseconds: limits.deadTimerMilliseconds, effectiveMilliseconds: deadTimerMilliseconds, stretch: load.stretch)
    }

    // MARK: - Status

    public var status: ClusterStatus {
        let health = devices.health
        var members: [MemberView] = []
        for member in configuration.members {
            if member.id == localMember {
                members.append(
                    MemberView(
                        id: member.id, name: member.name, address: member.address, isLocal: true, priority: member.priority,
                        state: state, assignedLoadPercent: state.isActive ? 100 : 0, health: health,
                        steadiness: steadiness, problems: devices.notOk, loadPercent: ownLoadPercent,
                        lastHeardMillisecondsAgo: nil))
            } else if let index = peerIndex(member.id) {
                let peer = peers[index]
                let live = isLive(peer)
                members.append(
                    MemberView(
                        id: member.id, name: member.name, address: member.address, isLocal: false, priority: peer.priority,
                        state: live ? peer.state : nil, assignedLoadPercent: live && peer.state.isActive ? 100 : 0,
                        health: live ? peer.health : nil, steadiness: live ? peer.steadiness : nil,
                        problems: live ? peer.problems : [], loadPercent: peer.loadPercent,
                        lastHeardMillisecondsAgo: peer.lastHeardAtMilliseconds.map { nowMilliseconds - $0 }))
            }
        }
        let deviceViews = devices.devices.map { device in
            DeviceView(
                name: device.name, kind: device.kind, state: device.state, detail: device.detail,
                timeoutMilliseconds: device.timeoutMilliseconds,
                lastReportMillisecondsAgo: nowMilliseconds - device.lastReportAtMilliseconds, missedDeadline: device.missedDeadline)
        }
        let interfaces = configuration.monitoredInterfaces.enumerated().map { index, name in
            InterfaceView(
                name: name, linkUp: linksUp[index],
                heartbeatAges: peers.map { peer in
                    InterfaceView.PeerAge(member: peer.id, ageMilliseconds: peer.interfaceHeardAtMilliseconds[index].map { nowMilliseconds - $0 })
                })
        }
        return ClusterStatus(
            mode: configuration.mode, localMember: localMember, state: state, members: members,
            activeDevices: deviceViews.filter { $0.state != .ok }, devices: deviceViews, lastStateChange: lastStateChange,
            failoverCount: failoverCount, failoverCountResetAtMilliseconds: failoverCountResetAtMilliseconds,
            failoverCountResetCause: failoverCountResetCause, interfaces: interfaces,
            requiredInterfaces: linksUp.count, interfacesUp: linksUp.count(where: { $0 }),
            heartbeatIntervalMilliseconds: limits.heartbeatIntervalMilliseconds, deadTimer: deadTimerStatus,
            loadPercent: ownLoadPercent, nowMilliseconds: nowMilliseconds)
    }
}
