import ManagementModel

/// An in-memory database view for model tests: objects by uid, applied change by change.
final class MemoryReader: ObjectReader {
    var objects: [String: ManagedObject] = [:]

    func object(uid: String) -> ManagedObject? { objects[uid] }
    func objects(named name: String) -> [ManagedObject] { objects.values.filter { $0.name == name }.sorted { $0.uid < $1.uid } }
    func referrers(of uid: String) -> [ManagedObject] {
        objects.values.filter { $0.referencedUIDs.contains(uid) }.sorted { $0.uid < $1.uid }
    }

    func apply(_ changes: [ObjectChange]) {
        for change in changes {
            switch change {
            case .upsert(let object): objects[object.uid] = object
            case .delete(let uid, _, _): objects[uid] = nil
            }
        }
    }
}

let plainPasswords = PasswordFunctions(hash: { "plain:" + $0 }, verify: { $1 == "plain:" + $0 })

/// A small world to run planner commands against.
final class World {
    let reader = MemoryReader()
    var counter = 0
    var planner: Planner { Planner(reader: reader, passwords: plainPasswords) }

    var context: ChangeContext {
        ChangeContext(administrator: "alice", nowMilliseconds: 1_000) { [unowned self] in
            self.counter += 1
            return "00000000-0000-0000-0000-\(String(format: "%012d", self.counter))"
        }
    }

    init() {
        let plan = try! planner.add(.package, ["name": "Standard"], context: context)
        reader.apply(plan.changes)
    }

    @discardableResult
    func add(_ type: ObjectType, _ params: [String: JSONValue]) throws -> ManagedObject {
        let plan = try planner.add(type, params, context: context)
        reader.apply(plan.changes)
        return plan.primary!
    }

    @discardableResult
    func set(_ type: ObjectType, _ params: [String: JSONValue]) throws -> ManagedObject {
        let plan = try planner.set(type, params, context: context)
        reader.apply(plan.changes)
        return reader.object(uid: plan.primary!.uid)!
    }

    func delete(_ type: ObjectType, _ params: [String: JSONValue]) throws {
        reader.apply(try planner.delete(type, params, context: context).changes)
    }

    var layer: ManagedObject { reader.objects(named: "Standard Network").first! }

    func ruleNames(_ layer: ManagedObject? = nil) -> [String] {
        let current = reader.object(uid: (layer ?? self.layer).uid)!
        return Rulebase(layer: current, reader: reader).uids.map { reader.object(uid: $0)!.name }
    }
}

func code(_ body: () throws -> Any) -> String? {
    do {
        _ = try body()
        return nil
    } catch let error as ManagementError { return error.code } catch { return "\(error)" }
}
