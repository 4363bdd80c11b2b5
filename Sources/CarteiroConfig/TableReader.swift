/// Reads one table against its schema: unknown keys, keys of the wrong scope, type errors and
/// missing required keys all become diagnostics; the typed values are then at hand by key.
struct TableReader {
    let table: ConfigDocument.Table
    let spec: TableSpec
    private var values: [String: (value: TypedValue, location: SourceLocation)] = [:]

    /// `scope` selects the mailbox keys that apply (nil: every key of the spec applies).
    init(_ table: ConfigDocument.Table, spec: TableSpec, scope: KeySpec.Scope?, scopeLabel: String = "", diagnostics: inout DiagnosticList) {
        self.table = table
        self.spec = spec
        let applicable = spec.keys.filter { scope == nil || $0.scope == .always || $0.scope == scope }
        var suggested: Set<String> = []
        for entry in table.entries {
            guard let key = spec.key(entry.key) else {
                let suggestion = NearestName.suggest(entry.key, among: applicable.map(\.key))
                if let suggestion { suggested.insert(suggestion) }
                let hint = suggestion.map { "; did you mean `\($0)`?" } ?? ""
                // The table as the file names it ([mailbox.acme-in]), not the schema's [mailbox.NAME].
                diagnostics.error(entry.keyLocation, "unknown key `\(entry.key)` in [\(ConfigDocument.render(table.path))]\(hint)")
                continue
            }
            if let scope, key.scope != .always, key.scope != scope {
                let owner = key.scope == .inbound ? "inbound" : "outbound"
                diagnostics.error(entry.keyLocation, "`\(entry.key)` applies to \(owner) mailboxes only, and this is \(scopeLabel)")
                continue
            }
            if case .invalid = entry.value.kind { continue }
            switch key.type.read(entry.value) {
            case .success(let typed):
                values[entry.key] = (typed, entry.value.location)
            case .failure(let error):
                diagnostics.error(error.location ?? entry.value.location, "`\(entry.key)`: \(error.detail)")
            }
        }
        // Without a known scope (a mailbox with no valid type) only the common keys are required.
        for key in applicable where key.required && table.entry(key.key) == nil && !suggested.contains(key.key)
            && (scope != nil || key.scope == .always) {
            diagnostics.error(table.location, "[\(ConfigDocument.render(table.path))] needs `\(key.key)`: \(key.doc.lowercasingFirstLetter)")
        }
    }

    var name: String { table.path.last ?? "" }

    /// True when the key is written but its value could not be read (an error is already reported).
    func isInvalid(_ key: String) -> Bool { table.entry(key) != nil && !values.keys.contains(key) }

    func has(_ key: String) -> Bool { table.entry(key) != nil }
    func location(_ key: String) -> SourceLocation { table.entry(key)?.value.location ?? table.location }
    func keyLocation(_ key: String) -> SourceLocation { table.entry(key)?.keyLocation ?? table.location }

    func string(_ key: String) -> String? {
        if case .string(let s)? = values[key]?.value { return s }
        return nil
    }
    func integer(_ key: String) -> Int? {
        if case .integer(let n)? = values[key]?.value { return n }
        return nil
    }
    func boolean(_ key: String) -> Bool? {
        if case .boolean(let b)? = values[key]?.value { return b }
        return nil
    }
    func duration(_ key: String) -> Duration? {
        if case .duration(let d)? = values[key]?.value { return d }
        return nil
    }
    func size(_ key: String) -> Int? {
        if case .size(let n)? = values[key]?.value { return n }
        return nil
    }
    func names(_ key: String) -> [String]? {
        if case .names(let n)? = values[key]?.value { return n }
        return nil
    }
    func afterFetch(_ key: String) -> AfterFetch? {
        if case .afterFetch(let a)? = values[key]?.value { return a }
        return nil
    }
    func address(_ key: String) -> MailAddress? {
        if case .address(let a)? = values[key]?.value { return a }
        return nil
    }

    /// The password source, checking that at most one is given.
    func secretSource(_ prefix: String = "password", diagnostics: inout DiagnosticList) -> SecretSource? {
        let keys = [prefix, prefix + "_file", prefix + "_env", prefix + "_credential"].filter(has)
        if keys.count > 1 {
            diagnostics.error(keyLocation(keys[1]), "`\(keys[1])` and `\(keys[0])` both give the \(prefix.replacingOccurrences(of: "_", with: " ")); keep one")
        }
        guard let first = keys.first, let text = string(first) else { return nil }
        switch first {
        case prefix: return .inline(Secret(text))
        case prefix + "_file": return .file(text)
        case prefix + "_env": return .environment(text)
        default: return .credential(text)
        }
    }
}

extension String {
    var lowercasingFirstLetter: String {
        guard let first, first.isUppercase, !(dropFirst().first?.isUppercase ?? false) else { return self }
        return first.lowercased() + dropFirst()
    }
}

extension TableSpec {
    /// The schema's default for `key`, when it is a value.
    func typedDefault(_ key: String) -> TypedValue? { self.key(key)?.defaultValue?.typed }

    // The builder's fallbacks: what the schema declares (`ConfigDefaultTests` holds every
    // key that has one to it, so that none of these falls through to its last line).
    func defaultDuration(_ key: String) -> Duration {
        if case .duration(let value)? = typedDefault(key) { return value }
        return .zero
    }
    func defaultInteger(_ key: String) -> Int {
        if case .integer(let value)? = typedDefault(key) { return value }
        return 0
    }
    func defaultSize(_ key: String) -> Int {
        if case .size(let value)? = typedDefault(key) { return value }
        return 0
    }
    func defaultBoolean(_ key: String) -> Bool {
        if case .boolean(let value)? = typedDefault(key) { return value }
        return false
    }
    func defaultAfterFetch(_ key: String) -> AfterFetch {
        if case .afterFetch(let value)? = typedDefault(key) { return value }
        return .keep
    }
    func defaultString(_ key: String) -> String {
        if case .string(let value)? = typedDefault(key) { return value }
        return ""
    }
}

extension TableReader {
    /// The key's value, or the schema's default for it.
    func durationOrDefault(_ key: String) -> Duration { duration(key) ?? spec.defaultDuration(key) }
    func integerOrDefault(_ key: String) -> Int { integer(key) ?? spec.defaultInteger(key) }
    func sizeOrDefault(_ key: String) -> Int { size(key) ?? spec.defaultSize(key) }
    func booleanOrDefault(_ key: String) -> Bool { boolean(key) ?? spec.defaultBoolean(key) }
    func stringOrDefault(_ key: String) -> String { string(key) ?? spec.defaultString(key) }
}
