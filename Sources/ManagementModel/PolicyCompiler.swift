/// An installation target: the gateway or cluster a package is compiled for.
public struct PolicyTarget: Sendable, Equatable, Hashable {
    public var uid: String
    public var name: String
    /// Other objects that stand for this gateway in install-on: the clusters it is a member of.
    public var alsoNamedBy: [String]
    /// For a cluster member: its cluster (the member's policy carries the cluster section).
    public var clusterUID: String?
    public init(uid: String, name: String, alsoNamedBy: [String] = [], clusterUID: String? = nil) {
        self.uid = uid
        self.name = name
        self.alsoNamedBy = alsoNamedBy
        self.clusterUID = clusterUID
    }

    /// Every uid a rule's install-on may name to reach this target.
    public var namedBy: [String] { [uid] + alsoNamedBy }
}

/// One thing wrong with a package, found while compiling it. Errors stop an install; warnings
/// (a rule no packet can reach) do not.
public struct PolicyProblem: Codable, Sendable, Equatable, Hashable, CustomStringConvertible {
    public enum Severity: String, Codable, Sendable { case error, warning }

    public var severity: Severity
    /// Stable, for scripts: unknown-package, no-access-layers, no-targets, unresolved-reference,
    /// unsupported-action, unsupported-object, nesting-too-deep, too-large, shadowed-rule.
    public var code: String
    public var message: String
    public var layer: String?
    public var ruleNumber: Int?
    public var ruleUID: String?

    public init(severity: Severity, code: String, message: String, layer: String? = nil, ruleNumber: Int? = nil, ruleUID: String? = nil) {
        self.severity = severity
        self.code = code
        self.message = message
        self.layer = layer
        self.ruleNumber = ruleNumber
        self.ruleUID = ruleUID
    }

    public var description: String { "\(severity.rawValue) \(code): \(message)" }

    public var json: JSONValue {
        var fields: [String: JSONValue] = ["severity": .string(severity.rawValue), "code": .string(code), "message": .string(message)]
        if let layer { fields["layer"] = .string(layer) }
        if let ruleNumber { fields["rule-number"] = .int(Int64(ruleNumber)) }
        if let ruleUID { fields["rule-uid"] = .string(ruleUID) }
        return .object(fields)
    }
}

/// Compiles a policy package for one target into the self-contained `CompiledPolicy` a gateway
/// enforces. Pure: it reads a published view and returns a value; time arrives as a parameter.
///
/// Rules: the package's access layers in order (ordered layers: a packet must be accepted by each
/// layer in turn, the first drop or reject decides); in a layer, rules in rulebase order with
/// sections flattened, disabled rules skipped and rule numbers kept; a rule applies to the target
/// when its install-on names "Policy Targets" or the target; address objects become merged address
/// ranges, services protocol and port ranges, groups resolved recursively; Accept, Drop and Reject
/// map to themselves; track other than None logs; each layer ends with its implicit cleanup rule
/// (the layer's `implicit-cleanup-action`). An Inner Layer rule is replaced by its inline layer's
/// rules (and that layer's implicit cleanup), each narrowed to what the parent rule matches. Ask,
/// Inform, User Auth and Client Auth need a user at the gateway: each is a compile error naming the
/// rule, never a silent approximation.
public enum PolicyCompiler {
    /// The name the implicit cleanup rules carry.
    public static let implicitCleanupName = "Implicit cleanup rule"

    public static func compile(
        package: String, target: PolicyTarget, reader: any ObjectReader, revision: UInt64, revisionHash: String,
        epochTerm: UInt64, epochServer: String, nowMilliseconds: Int64
    ) throws -> CompiledPolicy {
        let outcome = analyse(package: package, target: target, reader: reader)
        let errors = outcome.problems.filter { $0.severity == .error }
        guard errors.isEmpty, let packageObject = outcome.package else {
            throw ManagementError(
                code: "err_policy_compile",
                message: "Policy package [\(package)] cannot be compiled for [\(target.name)]: "
                    + errors.prefix(5).map(\.message).joined(separator: "; ") + (errors.count > 5 ? "; and \(errors.count - 5) more" : ""),
                httpStatus: 400, details: ["errors": .array(errors.map(\.json))])
        }
        return CompiledPolicy(
            packageName: packageObject.name, packageUID: packageObject.uid, targetName: target.name, targetUID: target.uid,
            revision: revision, revisionHash: revisionHash, epochTerm: epochTerm, epochServer: epochServer,
            compiledAtMilliseconds: nowMilliseconds, rules: outcome.rules)
    }

    /// The compiled rules and every problem found, without stopping at the first.
    public static func analyse(package: String, target: PolicyTarget, reader: any ObjectReader) -> (
        package: ManagedObject?, rules: [CompiledRule], problems: [PolicyProblem]
    ) {
        var compilation = Compilation(reader: reader, target: target)
        guard let packageObject = findPackage(package, reader: reader) else {
            return (nil, [], [PolicyProblem(severity: .error, code: "unknown-package", message: "Policy package [\(package)] not found")])
        }
        compilation.compile(packageObject)
        return (packageObject, compilation.rules, compilation.problems)
    }

    /// A package by uid or name; Check Point's examples write "standard" for "Standard".
    public static func findPackage(_ key: String, reader: any ObjectReader) -> ManagedObject? {
        if let object = reader.object(uid: key), object.type == .package { return object }
        for name in [key, key.capitalized, key.lowercased(), key.uppercased()] {
            if let match = reader.objects(named: name).first(where: { $0.type == .package }) { return match }
        }
        return nil
    }
}

/// One compile run: walks the package, collects rules and problems.
struct Compilation {
    let reader: any ObjectReader
    let target: PolicyTarget
    var rules: [CompiledRule] = []
    var problems: [PolicyProblem] = []

    init(reader: any ObjectReader, target: PolicyTarget) {
        self.reader = reader
        self.target = target
    }

    /// Where a problem was found, for its message.
    struct Place {
        let layer: String
        let number: Int
        let rule: ManagedObject
        var text: String { "rule \(number) [\(rule.name)] of layer [\(layer)]" }
    }

    mutating func error(_ code: String, _ message: String, at place: Place? = nil) {
        problems.append(
            PolicyProblem(
                severity: .error, code: code, message: message, layer: place?.layer,
                ruleNumber: place?.number, ruleUID: place?.rule.uid))
    }

    mutating func compile(_ package: ManagedObject) {
        let layerUIDs = package.uids("access-layers")
        guard package["access"]?.boolValue != false, !layerUIDs.isEmpty else {
            error("no-access-layers", "Policy package [\(package.name)] has no access layers")
            return
        }
        for layerUID in layerUIDs {
            guard let layer = reader.object(uid: layerUID), layer.type == .accessLayer else {
                error("unresolved-reference", "Policy package [\(package.name)] refers to access layer \(layerUID), which does not exist")
                continue
            }
            compile(layer: layer)
        }
        if rules.count > Limits.compiledRulesMax {
            error("too-large", "The compiled policy has \(rules.count) rules; at most \(Limits.compiledRulesMax) are allowed")
        }
    }

    mutating func compile(layer: ManagedObject) {
        rules += compiledRules(of: layer, enclosing: [])
    }

    /// A layer's rules then its implicit cleanup rule. `enclosing` are the inline layers' parents,
    /// outermost first (empty for an ordered layer): it guards against a layer inlined in itself.
    mutating func compiledRules(of layer: ManagedObject, enclosing: [Inlining]) -> [CompiledRule] {
        let rulebase = Rulebase(layer: layer, reader: reader)
        var out: [CompiledRule] = []
        var number = 0
        for entry in rulebase.entries where !entry.isSection {
            number += 1
            guard let rule = reader.object(uid: entry.uid), rule.type == .accessRule else {
                error("unresolved-reference", "Layer [\(layer.name)] lists rule \(entry.uid), which does not exist")
                continue
            }
            let place = Place(layer: layer.name, number: number, rule: rule)
            guard rule["enabled"]?.boolValue != false, appliesToTarget(rule) else { continue }
            out += compile(rule: rule, at: place, enclosing: enclosing)
        }
        let cleanup: CompiledAction = layer["implicit-cleanup-action"]?.stringValue == "accept" ? .accept : .drop
        out.append(
            CompiledRule(
                number: number + 1, uid: CompiledRule.implicitCleanupUID, name: PolicyCompiler.implicitCleanupName, layer: layer.name,
                action: cleanup, source: AddressMatch(any: true), destination: AddressMatch(any: true),
                service: ServiceMatch(any: true), log: false))
        return out
    }

    /// An inline layer's parent rule: the layer it sits in and the rule that applies the inline layer.
    struct Inlining {
        let layerUID: String
        let rule: CompiledRule
    }

    func appliesToTarget(_ rule: ManagedObject) -> Bool {
        let installOn = rule.uids("install-on")
        return installOn.isEmpty || installOn.contains(Predefined.policyTargetsUID) || target.namedBy.contains(where: installOn.contains)
    }

    /// One rule compiled; for action Inner Layer, the inline layer's rules (its implicit cleanup
    /// included) each narrowed to what the parent rule matches, named "parent / rule", numbered as
    /// the parent and in the parent's layer. Rules that can match nothing are left out.
    mutating func compile(rule: ManagedObject, at place: Place, enclosing: [Inlining]) -> [CompiledRule] {
        let action = compiledAction(rule, at: place)
        let source = addressMatch(rule, "source", at: place)
        let destination = addressMatch(rule, "destination", at: place)
        let service = serviceMatch(rule, at: place)
        guard let action, let source, let destination, let service else { return [] }
        let trackUID = rule["track"]?["type"]?.stringValue ?? Predefined.noneTrackUID
        let compiled = CompiledRule(
            number: place.number, uid: rule.uid, name: rule.name, layer: place.layer, action: action ?? .drop,
            source: source, destination: destination, service: service, log: trackUID != Predefined.noneTrackUID)
        guard action == nil else { return [compiled] }
        guard let inline = inlineLayer(of: rule, at: place, enclosing: enclosing) else { return [] }
        let parent = Inlining(layerUID: rule[ManagedObject.layerField]?.stringValue ?? "", rule: compiled)
        return compiledRules(of: inline, enclosing: enclosing + [parent]).compactMap { inner in
            var narrowed = inner
            narrowed.source = inner.source.intersected(with: source)
            narrowed.destination = inner.destination.intersected(with: destination)
            narrowed.service = inner.service.intersected(with: service)
            narrowed.number = place.number
            narrowed.layer = place.layer
            narrowed.name = "\(rule.name) / \(inner.name)"
            return narrowed.matchesNothing ? nil : narrowed
        }
    }

    /// The layer an Inner Layer rule applies; nil (with the problem recorded) when it is missing or
    /// already encloses this rule.
    mutating func inlineLayer(of rule: ManagedObject, at place: Place, enclosing: [Inlining]) -> ManagedObject? {
        guard let uid = rule["inline-layer"]?.stringValue, let layer = reader.object(uid: uid), layer.type == .accessLayer else {
            error("unresolved-reference", "\(place.text): action Inner Layer needs an existing inline-layer", at: place)
            return nil
        }
        let outer = enclosing.map(\.layerUID) + [rule[ManagedObject.layerField]?.stringValue ?? ""]
        guard !outer.contains(layer.uid) else {
            error("unsupported-object", "\(place.text): inline layer [\(layer.name)] contains itself", at: place)
            return nil
        }
        guard enclosing.count < Limits.groupNestingDepthMax else {
            error("nesting-too-deep", "\(place.text): inline layers nest deeper than \(Limits.groupNestingDepthMax)", at: place)
            return nil
        }
        return layer
    }

    /// The rule's action: `.some(nil)` for Inner Layer (its rules come from the inline layer), nil
    /// (with the problem recorded) for an action a gateway cannot enforce.
    mutating func compiledAction(_ rule: ManagedObject, at place: Place) -> CompiledAction?? {
        let uid = rule["action"]?.stringValue ?? Predefined.dropUID
        guard let action = reader.lookup(uid: uid), action.type == .action else {
            error("unresolved-reference", "\(place.text): action \(uid) does not exist", at: place)
            return nil
        }
        switch action.name.lowercased() {
        case "accept": return .some(.accept)
        case "drop": return .some(.drop)
        case "reject": return .some(.reject)
        case "inner layer": return .some(nil)
        default:
            error(
                "unsupported-action",
                "\(place.text): action [\(action.name)] needs user interaction at the gateway, which Rampart gateways do not offer; use Accept, Drop or Reject",
                at: place)
            return nil
        }
    }

    // MARK: addresses and services

    mutating func addressMatch(_ rule: ManagedObject, _ field: String, at place: Place) -> AddressMatch? {
        let uids = rule.uids(field)
        let negate = rule["\(field)-negate"]?.boolValue ?? false
        if uids.isEmpty || uids.contains(Predefined.anyUID) { return AddressMatch(any: true, negate: negate) }
        guard let ranges = resolve(uids, field: field, groupType: .group, nothing: { _ in "has no address to match" }, at: place, leaf: Self.ranges(of:))
        else { return nil }
        return AddressMatch(any: false, negate: negate, ranges: AddressRange.merged(ranges))
    }

    mutating func serviceMatch(_ rule: ManagedObject, at place: Place) -> ServiceMatch? {
        let uids = rule.uids("service")
        let negate = rule["service-negate"]?.boolValue ?? false
        if uids.isEmpty || uids.contains(Predefined.anyUID) { return ServiceMatch(any: true, negate: negate) }
        guard
            let entries = resolve(
                uids, field: "service", groupType: .serviceGroup, nothing: Self.whyNoService(_:),
                at: place, leaf: Self.services(of:))
        else { return nil }
        return ServiceMatch(any: false, negate: negate, entries: ServiceEntry.merged(entries))
    }

    /// What the objects `uids` stand for, groups of `groupType` resolved depth-first (a group met
    /// twice, in a diamond or a cycle, adds nothing new); nil, with the problem recorded, when an
    /// object is missing, matches nothing (`nothing` says why), or the cell grows too large.
    mutating func resolve<Entry>(
        _ uids: [String], field: String, groupType: ObjectType, nothing: (ManagedObject) -> String, at place: Place,
        leaf: (ManagedObject) -> [Entry]
    ) -> [Entry]? {
        var out: [Entry] = []
        var visited: Set<String> = []
        var pending = uids.reversed().map { (uid: $0, depth: 0) }
        while let (uid, depth) = pending.popLast() {
            guard depth <= Limits.groupNestingDepthMax else {
                error("nesting-too-deep", "\(place.text): \(field) nests groups deeper than \(Limits.groupNestingDepthMax)", at: place)
                return nil
            }
            guard visited.insert(uid).inserted else { continue }
            guard let object = reader.lookup(uid: uid) else {
                error("unresolved-reference", "\(place.text): \(field) refers to \(uid), which does not exist", at: place)
                return nil
            }
            if object.type == groupType {
                pending += object.uids("members").reversed().map { (uid: $0, depth: depth + 1) }
                continue
            }
            let found = leaf(object)
            guard !found.isEmpty else {
                error("unsupported-object", "\(place.text): \(field) object [\(object.name)] (\(object.type.rawValue)) \(nothing(object))", at: place)
                return nil
            }
            out += found
            guard out.count <= Limits.compiledCellEntriesMax else {
                error("too-large", "\(place.text): \(field) resolves to more than \(Limits.compiledCellEntriesMax) entries", at: place)
                return nil
            }
        }
        return out
    }

    /// The address ranges of one non-group object: a network, an address range, or anything with an
    /// address (hosts, management servers, gateways), each family it has.
    static func ranges(of object: ManagedObject) -> [AddressRange] {
        switch object.type {
        case .network:
            let families: [(String, String)] = [("subnet4", "mask-length4"), ("subnet6", "mask-length6")]
            return families.compactMap { subnetField, lengthField -> AddressRange? in
                guard let text = object[subnetField]?.stringValue, let subnet = IPAddress.parse(text),
                    let length = object[lengthField]?.intValue
                else { return nil }
                let (first, last) = subnet.network(length: Int(length))
                return AddressRange(first, last)
            }
        case .addressRange:
            let families: [(String, String)] = [("ipv4-address-first", "ipv4-address-last"), ("ipv6-address-first", "ipv6-address-last")]
            return families.compactMap { firstField, lastField -> AddressRange? in
                let range = AddressRange(first: object[firstField]?.stringValue ?? "", last: object[lastField]?.stringValue ?? "")
                return range.bounds.map { AddressRange($0.first, $0.last) }
            }
        default:
            return ["ipv4-address", "ipv6-address"].compactMap { key -> AddressRange? in
                guard let text = object[key]?.stringValue, let address = IPAddress.parse(text) else { return nil }
                return AddressRange(address, address)
            }
        }
    }

    /// Why a service object gives no protocol and port: a stored port the API would refuse today (from
    /// an older version, an import or a peer) is an error naming it, never a trap.
    static func whyNoService(_ object: ManagedObject) -> String {
        guard object.type == .serviceTCP || object.type == .serviceUDP else { return "is not a TCP or UDP service with a port" }
        guard let port = object["port"]?.stringValue else { return "has no port" }
        return "has an invalid port '\(port.prefix(40))' (expected 1-65535, a range like 1000-2000, or >N / <N)"
    }

    /// The protocol and port range of one TCP or UDP service.
    static func services(of object: ManagedObject) -> [ServiceEntry] {
        guard object.type == .serviceTCP || object.type == .serviceUDP, let spec = object["port"]?.stringValue,
            let range = PortSpec.range(spec)
        else { return [] }
        return [ServiceEntry(proto: object.type == .serviceTCP ? "tcp" : "udp", portFirst: range.lowerBound, portLast: range.upperBound)]
    }
}

/// Rules no packet can reach because one earlier rule of the same layer matches everything they
/// match. Quadratic, so it stops looking past `rulesChecked`.
enum ShadowCheck {
    static let rulesChecked = 2_000

    static func problems(in rules: [CompiledRule]) -> [PolicyProblem] {
        var out: [PolicyProblem] = []
        let checked = rules.prefix(rulesChecked)
        for (index, rule) in checked.enumerated() where rule.uid != CompiledRule.implicitCleanupUID {
            guard let earlier = checked[..<index].first(where: { $0.layer == rule.layer && covers($0, rule) }) else { continue }
            out.append(
                PolicyProblem(
                    severity: .warning, code: "shadowed-rule",
                    message:
                        "rule \(rule.number) [\(rule.name)] of layer [\(rule.layer)] is never reached: rule \(earlier.number) [\(earlier.name)] matches everything it matches",
                    layer: rule.layer, ruleNumber: rule.number, ruleUID: rule.uid))
        }
        return out
    }

    static func covers(_ earlier: CompiledRule, _ later: CompiledRule) -> Bool {
        covers(earlier.source, later.source) && covers(earlier.destination, later.destination) && covers(earlier.service, later.service)
    }

    static func covers(_ a: AddressMatch, _ b: AddressMatch) -> Bool {
        if a.any && !a.negate { return true }
        if a == b { return true }
        guard !a.negate, !b.negate, !a.any, !b.any else { return false }
        return b.ranges.allSatisfy { $0.isCovered(byMerged: a.ranges) }
    }

    static func covers(_ a: ServiceMatch, _ b: ServiceMatch) -> Bool {
        if a.any && !a.negate { return true }
        if a == b { return true }
        guard !a.negate, !b.negate, !a.any, !b.any else { return false }
        return b.entries.allSatisfy { entry in
            a.entries.contains { $0.proto == entry.proto && $0.portFirst <= entry.portFirst && entry.portLast <= $0.portLast }
        }
    }
}

/// What `verify-policy` reports for a package and its targets: every compile problem (errors stop
/// an install, warnings do not), each once.
public enum PolicyVerifier {
    public static func verify(package: String, targets: [PolicyTarget], reader: any ObjectReader) -> [PolicyProblem] {
        var problems: [PolicyProblem] = []
        if targets.isEmpty {
            problems.append(PolicyProblem(severity: .error, code: "no-targets", message: "Policy package [\(package)] has no installation targets"))
        }
        // Without targets the package is still checked, against a target no install-on names.
        let checked = targets.isEmpty ? [PolicyTarget(uid: "", name: "")] : targets
        var seen = Set(problems)
        for target in checked {
            let outcome = PolicyCompiler.analyse(package: package, target: target, reader: reader)
            // Shadowed rules are warnings for the operator only: installs never compute them.
            for problem in outcome.problems + ShadowCheck.problems(in: outcome.rules) where seen.insert(problem).inserted {
                problems.append(problem)
            }
        }
        return problems
    }

    public static func hasErrors(_ problems: [PolicyProblem]) -> Bool { problems.contains { $0.severity == .error } }
}
