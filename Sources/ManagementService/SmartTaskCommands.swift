import Logging
import ManagementModel
import Store

extension ManagementService {
    // MARK: reads for the SmartTasks engine (never rendered: they carry the shared secrets)

    /// The enabled tasks of the published head that `trigger` fires, by name, secrets included. A
    /// stored task that no longer parses (written by another version) is skipped and logged.
    public func smartTasks(for trigger: SmartTaskTrigger) throws -> [SmartTaskDefinition] {
        let (objects, _) = try store.objects(types: [.smartTask], offset: 0, limit: Int.max, nameFilter: nil)
        var out: [SmartTaskDefinition] = []
        for object in objects where object.fields["trigger"]?.stringValue.flatMap(SmartTaskTrigger.named) == trigger {
            do {
                let task = try SmartTaskDefinition(object)
                if task.enabled { out.append(task) }
            } catch let error as ManagementError {
                logger.warning("smart-task skipped: it does not parse", metadata: ["uid": "\(object.uid)", "error": "\(error.code)"])
            }
        }
        return out
    }

    /// A published repository script by uid, or else by name.
    public func repositoryScript(_ uidOrName: String) -> RepositoryScript? {
        let reader = store.reader
        let object =
            reader.object(uid: uidOrName).flatMap { $0.type == .repositoryScript ? $0 : nil }
            ?? reader.objects(named: uidOrName).first { $0.type == .repositoryScript }
        return object.flatMap { try? RepositoryScript($0) }
    }
}
