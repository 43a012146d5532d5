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
        guard let trigger = SmartTaskTrigger.named(trigger), let definitions = try? service.smartTasks(for: trigger) else { return [] }
        return definitions.map(spec)
    }

    public func task(uid: String) async -> SmartTaskSpec? {
        guard let definition = try? service.smartTask(uid: uid) else { return nil }
        return spec(definition)
    }

    func spec(_ definition: SmartTaskDefinition) -> SmartTaskSpec {
        guard case .runScript(let scriptUID, _, _) = definition.action else { return SmartTaskSpec(definition, script: nil) }
        return SmartTaskSpec(definition, script: service.repositoryScript(scriptUID))
    }
}
