import ManagementModel
import ManagementService

/// The published smart-tasks and repository scripts of this node's management service (the same on
/// every node of the group: they synchronize like every published object).
public struct ServiceSmartTaskCatalog: SmartTaskCatalog {
    let service: ManagementService

    public init(service: ManagementService) {
        self.service = service
    }

    public func tasks(for trigger: String) async -> [SmartTaskSpec] {
        guard let trigger = SmartTaskTrigger.named(trigger), let definitions = try? await service.smartTasks(for: trigger) else { return [] }
        var out: [SmartTaskSpec] = []
        for definition in definitions { out.append(await spec(definition)) }
        return out
    }

    public func task(uid: String) async -> SmartTaskSpec? {
        guard let object = service.publishedObject(uid: uid), object.type == .smartTask, let definition = try? SmartTaskDefinition(object) else {
            return nil
        }
        return await spec(definition)
    }

    func spec(_ definition: SmartTaskDefinition) async -> SmartTaskSpec {
        guard case .runScript(let scriptUID, _, _) = definition.action else { return SmartTaskSpec(definition, script: nil) }
        return SmartTaskSpec(definition, script: await service.repositoryScript(scriptUID))
    }
}
