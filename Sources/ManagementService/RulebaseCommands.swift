import ManagementModel

extension ManagementService {
    /// show-access-rulebase (CHECKPOINT-API.md §2.4): paging counts rules only; sections wrap the
    /// rules of theirs on the page, and empty sections appear in place.
    func showAccessRulebase(_ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse {
        let reader = view(of: sessionUID)
        let planner = Planner(reader: reader, passwords: passwords)
        var layerParams = params
        if layerParams["layer"] == nil { layerParams["layer"] = params["uid"] ?? params["name"] }
        let layer = try planner.findLayer(layerParams)
        let rulebase = Rulebase(layer: layer, reader: reader)
        let (offset, limit) = try page(params, allowZero: true)
        let useDictionary = try params.flag("use-object-dictionary", default: true)
        let level = try DetailsLevel.parse(params["details-level"])
        let total = rulebase.ruleCount
        let firstNumber = offset + 1
        let lastNumber = min(offset + limit, total)
        let pageHasRules = firstNumber <= lastNumber
        let renderer = Renderer(reader: reader)

        var items: [JSONValue] = []
        var dictionary: [String: JSONValue] = [:]
        var openSection: (uid: String, rules: [JSONValue], from: Int?, to: Int?)?
        func closeSection() {
            guard let section = openSection, let object = reader.object(uid: section.uid) else { return }
            var fields: [String: JSONValue] = [
                "uid": .string(object.uid), "name": .string(object.name), "type": .string("access-section"),
                "rulebase": .array(section.rules),
            ]
            if let from = section.from, let to = section.to {
                fields["from"] = .int(Int64(from))
                fields["to"] = .int(Int64(to))
            }
            items.append(.object(fields))
            openSection = nil
        }
        var number = 0
        for (index, entry) in rulebase.entries.enumerated() {
            if entry.isSection {
                closeSection()
                let hasRules = index + 1 < rulebase.entries.count && !rulebase.entries[index + 1].isSection
                let inPlace = pageHasRules && number >= firstNumber - 1 && (number < lastNumber || lastNumber == total)
                if hasRules || (inPlace && !hasRules) || (total == 0 && limit > 0) {
                    openSection = (entry.uid, [], nil, nil)
                    if !hasRules && !inPlace && !(total == 0 && limit > 0) { openSection = nil }
                }
                continue
            }
            number += 1
            guard number >= firstNumber, number <= lastNumber, let rule = reader.object(uid: entry.uid) else { continue }
            let rendered = renderRule(
                rule, number: number, renderer: renderer, useDictionary: useDictionary, level: level, dictionary: &dictionary, sessionUID: sessionUID)
            if openSection != nil {
                openSection!.rules.append(rendered)
                openSection!.from = openSection!.from ?? number
                openSection!.to = number
            } else {
                items.append(rendered)
            }
        }
        closeSection()
        // Sections that hold no rule of this page are dropped, unless empty and in place.
        items = items.filter { item in
            guard item["type"]?.stringValue == "access-section" else { return true }
            return !(item["rulebase"]?.arrayValue?.isEmpty ?? true) || item["from"] == nil
        }
        if !pageHasRules && !(total == 0 && limit > 0) { items = [] }
        var reply: [String: JSONValue] = [
            "uid": .string(layer.uid), "name": .string(layer.name), "rulebase": .array(items), "total": .int(Int64(total)),
            "from": .int(pageHasRules ? Int64(firstNumber) : 0), "to": .int(pageHasRules ? Int64(lastNumber) : 0),
        ]
        if useDictionary { reply["objects-dictionary"] = .array(dictionary.keys.sorted().map { dictionary[$0]! }) }
        return APIResponse(body: .object(reply))
    }

    func renderRule(
        _ rule: ManagedObject, number: Int, renderer: Renderer, useDictionary: Bool, level: DetailsLevel,
        dictionary: inout [String: JSONValue], sessionUID: String
    ) -> JSONValue {
        guard useDictionary else {
            return renderer.render(
                rule, level: level == .uid ? .standard : level, lock: lockText(rule.uid, viewer: sessionUID), extra: ["rule-number": .int(Int64(number))])
        }
        for uid in rule.referencedUIDs { if let object = renderer.reader.lookup(uid: uid) { dictionary[uid] = renderer.summary(object) } }
        guard case .object(var fields) = renderer.render(rule, level: .full, lock: lockText(rule.uid, viewer: sessionUID)) else { return .null }
        let schema = Schema.of(.accessRule)
        for key in rule.fields.keys where !ManagedObject.internalFields.contains(key) {
            switch schema.field(key)?.kind {
            case .reference?: fields[key] = rule.fields[key]
            case .references?: fields[key] = .array(rule.uids(key).map(JSONValue.string))
            case .track?: fields[key] = rule.fields[key]
            default: break
            }
        }
        fields["rule-number"] = .int(Int64(number))
        return .object(fields)
    }

    /// show-layer-structure: sections with their rule ranges, for clients placing rules relative to sections.
    func showLayerStructure(_ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse {
        // The structure comes whole (sections and rule numbers are small); paging parameters are
        // still checked as every list's are, never silently replaced.
        _ = try page(params)
        let reader = view(of: sessionUID)
        var layerParams = params
        if layerParams["layer"] == nil { layerParams["layer"] = params["uid"] ?? params["name"] }
        let layer = try Planner(reader: reader, passwords: passwords).findLayer(layerParams)
        let rulebase = Rulebase(layer: layer, reader: reader)
        var children: [JSONValue] = []
        var section: (object: ManagedObject, rules: [JSONValue], from: Int?, to: Int?)?
        func close() {
            guard let s = section else { return }
            var fields: [String: JSONValue] = [
                "uid": .string(s.object.uid), "name": .string(s.object.name), "type": .string("access-section"), "children": .array(s.rules),
            ]
            if let from = s.from, let to = s.to {
                fields["from-rule"] = .int(Int64(from))
                fields["to-rule"] = .int(Int64(to))
            }
            children.append(.object(fields))
            section = nil
        }
        var number = 0
        for entry in rulebase.entries {
            guard let object = reader.object(uid: entry.uid) else { continue }
            if entry.isSection {
                close()
                section = (object, [], nil, nil)
                continue
            }
            number += 1
            let item: JSONValue = .object([
                "uid": .string(object.uid), "name": .string(object.name), "type": .string("access-rule"), "rule-number": .int(Int64(number)),
            ])
            if section != nil {
                section!.rules.append(item)
                section!.from = section!.from ?? number
                section!.to = number
            } else {
                children.append(item)
            }
        }
        close()
        return APIResponse.ok([
            "uid": .string(layer.uid), "name": .string(layer.name), "type": .string("access-layer"),
            "from": .int(number > 0 ? 1 : 0), "to": .int(Int64(number)), "total": .int(Int64(number)),
            "root-section": .object(["uid": .string(layer.uid), "name": .string(layer.name), "children": .array(children)]),
        ])
    }
}
