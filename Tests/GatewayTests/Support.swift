import Gateway
import ManagementModel

/// A small management database in memory, built with the real planner, to compile real policies from.
final class PolicyWorld: ObjectReader {
    var objects: [String: ManagedObject] = [:]
    var counter = 0

    func object(uid: String) -> ManagedObject? { objects[uid] }
    func objects(named name: String) -> [ManagedObject] { objects.values.filter { $0.name == name }.sorted { $0.uid < $1.uid } }
    func referrers(of uid: String) -> [ManagedObject] {
        objects.values.filter { $0.referencedUIDs.contains(uid) }.sorted { $0.uid < $1.uid }
    }

    var planner: Planner {
        Planner(reader: self, passwords: PasswordFunctions(hash: { $0 }, verify: { $0 == $1 }))
    }

    var context: ChangeContext {
        ChangeContext(administrator: "test", nowMilliseconds: 1_000) { [unowned self] in
            self.counter += 1
            return "00000000-0000-0000-0000-\(String(format: "%012d", self.counter))"
        }
    }

    init() {
        try! add(.package, ["name": "Standard"])
    }

    @discardableResult
    func add(_ type: ObjectType, _ params: [String: JSONValue]) throws -> ManagedObject {
        let plan = try planner.add(type, params, context: context)
        for change in plan.changes {
            if case .upsert(let object) = change { objects[object.uid] = object }
        }
        return plan.primary!
    }

    /// A rule added above the layer's Cleanup rule (Drop, Any, Any, Any).
    @discardableResult
    func rule(_ params: [String: JSONValue]) throws -> ManagedObject {
        var all = params
        all["layer"] = "Standard Network"
        all["position"] = ["above": "Cleanup rule"]
        return try add(.accessRule, all)
    }

    func compile(target: String = "gw") throws -> CompiledPolicy {
        try PolicyCompiler.compile(
            package: "Standard", target: PolicyTarget(uid: "\(target)-uid", name: target), reader: self,
            revision: 3, revisionHash: "hash-3", epochTerm: 1, epochServer: "primary", nowMilliseconds: 5_000)
    }
}

func packet(_ source: String, _ destination: String, _ proto: String, _ port: Int?) throws -> Packet {
    try Packet.parse(source: source, destination: destination, proto: proto, destinationPort: port.map(String.init))
}
