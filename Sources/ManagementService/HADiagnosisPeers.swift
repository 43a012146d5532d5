import Foundation
import ManagementModel

/// Peer reachability and SIC trust findings of `ha diagnose`.
extension HADiagnosis {
    /// A peer with no channel up (and no trust error, which `peerTrust` reports): where it should be,
    /// since when it is silent, and what a TCP connect to its SIC address gave.
    static func peerReachability(_ server: HAStatusReport.Server, _ facts: HADiagnosisFacts) -> Finding? {
        guard !server.connected, server.syncStatus != "trust-error" else { return nil }
        let peer = facts.peers[server.name]
        let address = peer?.sicAddress
        let since =
            server.lastContactMillisecondsAgo.map { ago in
                "last contact \(ago / 1000) s ago (\(Renderer.iso8601(milliseconds: facts.nowMilliseconds &- ago)))"
            } ?? "never heard from"
        let evidence =
            "\(server.name) at SIC \(address ?? "(no address recorded)"): not connected, \(since); TCP connect: \(peer?.connect?.description ?? "not tried"); \(server.syncDetail)"
        let (fix, command) = reachabilityFix(server.name, address: address, connect: peer?.connect, facts)
        return Finding(
            code: "peer-unreachable", severity: .problem, summary: "\(server.name) is unreachable", evidence: evidence, fix: fix, fixCommand: command)
    }

    static func reachabilityFix(_ name: String, address: String?, connect: TCPConnectResult?, _ facts: HADiagnosisFacts) -> (String, String) {
        let showAddress = "rampart mgmt show-checkpoint-host name=\(name) -r true --data \(facts.dataDirectory)"
        guard let address, let connect else {
            return ("no SIC address is recorded for \(name): it has not announced one yet; start it, or check its object", showAddress)
        }
        switch connect {
        case .refused:
            return (
                "nothing listens on \(address): \(name) is down (or listens on another SIC port): start it",
                "rampart server --data DIR --server-name \(name)   # on \(name), DIR its data directory"
            )
        case .timeout:
            return (
                "connections to \(address) get no answer: a firewall or the network drops them; open TCP \(address) from this server to \(name)",
                "nc -vz \(address.replacingOccurrences(of: ":", with: " "))   # from this server; then open the port in the firewall"
            )
        case .ok:
            return (
                "\(address) accepts TCP but no HA channel is up: check SIC between the two (and that the process there is \(name))",
                "rampart sic test \(name) --data \(facts.dataDirectory)"
            )
        case .failed(let reason):
            return ("\(address) cannot be reached from here (\(reason)): check the address recorded for \(name)", showAddress)
        }
    }

    /// A peer whose channel is refused for its certificate, or refuses ours.
    static func peerTrust(_ server: HAStatusReport.Server, _ facts: HADiagnosisFacts) -> Finding? {
        guard server.syncStatus == "trust-error" else { return nil }
        let detail = server.syncDetail
        // "we refused NAME's certificate: …" is the peer's certificate; otherwise the peer refused ours.
        let subject =
            detail.contains("we refused") || (detail.contains("revoked") && !detail.contains("this server's"))
            ? server.name : facts.status.thisServer ?? "this server"
        let cause = trustCause(detail)
        return Finding(
            code: "sic-broken", severity: .problem, summary: "SIC between this server and \(server.name) is broken: \(subject)'s certificate \(cause.words)",
            evidence: detail, fix: cause.fix + ": " + resetSteps(subject, facts).words, fixCommand: resetSteps(subject, facts).command)
    }

    /// This server's own SIC certificate, from the promotion's trust check.
    static func ownTrust(_ facts: HADiagnosisFacts) -> [Finding] {
        guard let check = facts.checks.first(where: { $0.name == "trust" }),
            check.detail.hasPrefix("SIC certificate expired") || check.detail.contains("cannot be read")
        else { return [] }
        let name = facts.status.thisServer ?? "this server"
        let steps = resetSteps(name, facts)
        let cause = check.detail.hasPrefix("SIC certificate expired") ? "expired" : "cannot be read"
        return [
            Finding(
                code: "sic-broken", severity: .problem, summary: "this server's (\(name)) SIC certificate \(cause): peers and gateways refuse it",
                evidence: check.detail, fix: "give \(name) a new certificate: \(steps.words)", fixCommand: steps.command)
        ]
    }

    struct TrustCause {
        var words: String
        var fix: String
    }

    /// The cause, from the verifier's words (`PeerTrustFailure.description`) or the peer's alert.
    static func trustCause(_ detail: String) -> TrustCause {
        if detail.contains("revoked") {
            return TrustCause(
                words: "was revoked",
                fix: "a revoked server must enrol again with the one-time key its SIC reset printed (reset it again for a new key if that one is lost)")
        }
        if detail.contains("expired") { return TrustCause(words: "expired", fix: "renew it by resetting SIC") }
        if detail.contains("not valid before") {
            return TrustCause(
                words: "is not valid yet", fix: "a clock is wrong: put both servers on NTP (`timedatectl set-ntp true`); if it persists, reset SIC")
        }
        if detail.contains("another CA") {
            return TrustCause(
                words: "was issued by another CA", fix: "that server was enrolled with another group's Internal CA: enrol it again in this group")
        }
        if detail.contains("certificate is for") {
            return TrustCause(
                words: "names another server (wrong identity)",
                fix: "the address recorded for it reaches a different server: correct the address (--advertise-sic) or enrol it again")
        }
        return TrustCause(words: "is refused", fix: "enrol it again")
    }

    /// README's SIC reset steps: on the active, revoke and set a new key; on the server, join again.
    static func resetSteps(_ name: String, _ facts: HADiagnosisFacts) -> (words: String, command: String) {
        let status = facts.status
        let active = status.activeServer ?? "ACTIVE"
        let activeData = status.mode == "active" ? facts.dataDirectory : "ACTIVE-DIR"
        let activeSIC = (status.mode == "active" ? facts.ownSICAddress : facts.peers[active]?.sicAddress) ?? "\(active):18191"
        return (
            "on the active \(active), `rampart sic reset \(name)` revokes its certificate and prints a new one-time key; on \(name), start it on a fresh data directory with --join and that key (it gets a full sync)",
            "rampart sic reset \(name) --data \(activeData)   # on \(active); then on \(name): rampart server --data NEW-DIR --server-name \(name) --join \(activeSIC) --activation-key-file ./key"
        )
    }
}
