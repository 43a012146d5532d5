import ManagementModel

/// Reads a pushed policy (CompiledPolicy JSON, as the server's JSONEncoder wrote it) through the
/// project's JSON parser: about twice as fast as JSONDecoder on a large rulebase, which is what a
/// gateway spends most of an install on. Errors name the field that is missing or wrong.
public enum PolicyDecoding {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    public static func decode(_ bytes: some Collection<UInt8>) throws -> CompiledPolicy {
        let root = try JSONValue.parse(bytes)
        return CompiledPolicy(
            formatVersion: Int(try integer(root, "formatVersion")), packageName: try text(root, "packageName"),
            packageUID: try text(root, "packageUID"), targetName: try text(root, "targetName"), targetUID: try text(root, "targetUID"),
            revision: try unsigned(root, "revision"), revisionHash: try text(root, "revisionHash"),
            epochTerm: try unsigned(root, "epochTerm"), epochServer: try text(root, "epochServer"),
            compiledAtMilliseconds: try integer(root, "compiledAtMilliseconds"),
            rules: try list(root, "rules").enumerated().map { index, item in try rule(item, at: "rules[\(index)]") },
            cluster: try root["cluster"].map { try cluster($0, at: "cluster") })
    }

    /// The cluster section of a member's policy; lists are bounded before they are read.
    static func cluster(_ value: JSONValue, at path: String) throws -> CompiledCluster {
        let members = try boundedList(value, "members", path, max: Limits.clusterMembersMax)
        return CompiledCluster(
            clusterName: try text(value, "clusterName", path), clusterUID: try text(value, "clusterUID", path), mode: try text(value, "mode", path),
            memberRecovery: try text(value, "memberRecovery", path),
            heartbeatIntervalMilliseconds: try integer(value, "heartbeatIntervalMilliseconds", path),
            deadTimerMilliseconds: try integer(value, "deadTimerMilliseconds", path),
            localMemberID: Int(try integer(value, "localMemberID", path)), localMemberName: try text(value, "localMemberName", path),
            localMemberUID: try text(value, "localMemberUID", path), localPriority: try integer(value, "localPriority", path),
            members: try members.enumerated().map { index, item in
                let at = "\(path).members[\(index)]"
                return CompiledClusterMember(
                    memberID: Int(try integer(item, "memberID", at)), name: try text(item, "name", at), uid: try text(item, "uid", at),
                    priority: try integer(item, "priority", at), address: try text(item, "address", at),
                    interfaces: try interfaces(item, at: at))
            },
            interfaces: try interfaces(value, at: path),
            heartbeatKey: try value["heartbeatKey"].map { _ in try text(value, "heartbeatKey", path) })
    }

    static func interfaces(_ value: JSONValue, at path: String) throws -> [CompiledClusterInterface] {
        try boundedList(value, "interfaces", path, max: Limits.clusterInterfacesMax).enumerated().map { index, item in
            let at = "\(path).interfaces[\(index)]"
            let address: String? = item["address"] == nil || item["address"] == .null ? nil : try text(item, "address", at)
            let length: Int? = item["maskLength"] == nil || item["maskLength"] == .null ? nil : Int(try integer(item, "maskLength", at))
            return CompiledClusterInterface(name: try text(item, "name", at), type: try text(item, "type", at), address: address, maskLength: length)
        }
    }

    static func boundedList(_ value: JSONValue, _ key: String, _ path: String, max: Int) throws -> [JSONValue] {
        let items = try list(value, key, path)
        guard items.count <= max else { throw Failure(description: "\(path).\(key): \(items.count) items, more than \(max)") }
        return items
    }

    static func rule(_ value: JSONValue, at path: String) throws -> CompiledRule {
        guard let action = CompiledAction(rawValue: try text(value, "action", path)) else {
            throw Failure(description: "\(path).action: not accept, drop or reject")
        }
        return CompiledRule(
            number: Int(try integer(value, "number", path)), uid: try text(value, "uid", path), name: try text(value, "name", path),
            layer: try text(value, "layer", path), action: action,
            source: try addresses(try field(value, "source", path), at: path + ".source"),
            destination: try addresses(try field(value, "destination", path), at: path + ".destination"),
            service: try services(try field(value, "service", path), at: path + ".service"),
            log: try flag(value, "log", path))
    }

    static func addresses(_ value: JSONValue, at path: String) throws -> AddressMatch {
        AddressMatch(
            any: try flag(value, "any", path), negate: try flag(value, "negate", path),
            ranges: try list(value, "ranges", path).map { AddressRange(first: try text($0, "first", path), last: try text($0, "last", path)) })
    }

    static func services(_ value: JSONValue, at path: String) throws -> ServiceMatch {
        ServiceMatch(
            any: try flag(value, "any", path), negate: try flag(value, "negate", path),
            entries: try list(value, "entries", path).map {
                ServiceEntry(
                    proto: try text($0, "proto", path), portFirst: Int(try integer($0, "portFirst", path)),
                    portLast: Int(try integer($0, "portLast", path)))
            })
    }

    static func field(_ value: JSONValue, _ key: String, _ path: String = "") throws -> JSONValue {
        guard let found = value[key] else { throw Failure(description: "\(path.isEmpty ? "" : path + ".")\(key): missing") }
        return found
    }

    static func text(_ value: JSONValue, _ key: String, _ path: String = "") throws -> String {
        guard let text = try field(value, key, path).stringValue else { throw Failure(description: "\(path.isEmpty ? "" : path + ".")\(key): not a string") }
        return text
    }

    static func integer(_ value: JSONValue, _ key: String, _ path: String = "") throws -> Int64 {
        guard case .int(let number) = try field(value, key, path) else { throw Failure(description: "\(path.isEmpty ? "" : path + ".")\(key): not an integer") }
        return number
    }

    static func unsigned(_ value: JSONValue, _ key: String, _ path: String = "") throws -> UInt64 {
        let number = try integer(value, key, path)
        guard number >= 0 else { throw Failure(description: "\(path.isEmpty ? "" : path + ".")\(key): negative") }
        return UInt64(number)
    }

    static func flag(_ value: JSONValue, _ key: String, _ path: String = "") throws -> Bool {
        guard case .bool(let flag) = try field(value, key, path) else {
            throw Failure(description: "\(path.isEmpty ? "" : path + ".")\(key): not true or false")
        }
        return flag
    }

    static func list(_ value: JSONValue, _ key: String, _ path: String = "") throws -> [JSONValue] {
        guard let items = try field(value, key, path).arrayValue else { throw Failure(description: "\(path.isEmpty ? "" : path + ".")\(key): not a list") }
        return items
    }
}
