#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Reads a configuration file and the files it includes into one `ConfigDocument`.
/// This is the only part of the configuration module that touches the file system.
package struct ConfigLoader {
    package struct Result: Sendable {
        package var document: ConfigDocument
        /// Every file read, the main one first, in the order they were read.
        package var files: [String]
        package var diagnostics: DiagnosticList
        /// The main file could not be read at all: nothing else is worth saying about it.
        package var mainFileUnreadable = false
    }

    private var document: ConfigDocument
    private var files: [String] = []
    private var seen: Set<String> = []
    private var diagnostics = DiagnosticList()

    /// Loads `path` and its includes. Problems become diagnostics; this never throws.
    package static func load(path: String) -> Result {
        var loader = ConfigLoader(document: ConfigDocument(file: path))
        loader.loadFile(path, includedFrom: nil, depth: 0)
        let unreadable = loader.diagnostics.errors.contains { $0.location.file == path && $0.message.hasPrefix("cannot read the configuration") || $0.message.hasPrefix("\(path) is a directory") }
        return Result(document: loader.document, files: loader.files, diagnostics: loader.diagnostics, mainFileUnreadable: unreadable)
    }

    /// Loads a configuration given as text (tests, fuzzing). Includes resolve against `directory`.
    package static func load(text: String, file: String, directory: String = ".") -> Result {
        var loader = ConfigLoader(document: ConfigDocument(file: file))
        loader.files.append(file)
        loader.parseAndAdd(text, file: file, directory: directory, depth: 0)
        return Result(document: loader.document, files: loader.files, diagnostics: loader.diagnostics)
    }

    private init(document: ConfigDocument) {
        self.document = document
    }

    private mutating func loadFile(_ path: String, includedFrom: SourceLocation?, depth: Int) {
        let origin = includedFrom ?? SourceLocation(file: path, line: 1, column: 1)
        let canonical = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        if seen.contains(canonical) {
            diagnostics.error(origin, "\(path) is included more than once (or includes itself)")
            return
        }
        seen.insert(canonical)
        files.append(path)
        let data: Data
        switch RegularFile.read(path, limit: ConfigLimits.maximumFileSize) {
        case .success(let bytes):
            data = Data(bytes)
        case .failure(.missing):
            diagnostics.error(origin, includedFrom == nil
                ? "cannot read the configuration: \(path) does not exist"
                : "cannot include \(path): it does not exist")
            return
        case .failure(.directory):
            diagnostics.error(origin, "\(path) is a directory, not a configuration file\(includedFrom == nil ? "" : " (to include a folder, write \"\(path)/*.conf\")")")
            return
        case .failure(.tooLarge):
            diagnostics.error(SourceLocation(file: path, line: 1, column: 1), "file is larger than \(ConfigLimits.maximumFileSize / 1024) KB: this is not a configuration file")
            return
        case .failure(let problem):
            diagnostics.error(origin, "cannot \(includedFrom == nil ? "read the configuration" : "include") \(path): it \(problem)")
            return
        }
        guard let text = Self.decodeUTF8(data, file: path, diagnostics: &diagnostics) else { return }
        let directory = (path as NSString).deletingLastPathComponent
        parseAndAdd(text, file: path, directory: directory.isEmpty ? "." : directory, depth: depth)
    }

    private mutating func parseAndAdd(_ text: String, file: String, directory: String, depth: Int) {
        let parsed = ConfigParser.parse(text, file: file)
        diagnostics.append(contentsOf: parsed.diagnostics)
        var statements: [ConfigStatement] = []
        var includes: [ConfigValue] = []
        var sawHeader = false
        for statement in parsed.statements {
            switch statement {
            case .header: sawHeader = true
            case .assignment(let key, _, let value) where !sawHeader && key == ["include"]:
                includes.append(value)
                continue
            default: break
            }
            statements.append(statement)
        }
        document.add(statements, diagnostics: &diagnostics)
        for value in includes {
            let patterns: [ConfigValue]
            switch value.kind {
            case .string: patterns = [value]
            case .array(let items): patterns = items
            case .invalid: continue
            default:
                diagnostics.error(value.location, "`include` expects a path or a glob such as \"conf.d/*.conf\" (or an array of them), found \(value.typeDescription)")
                continue
            }
            for pattern in patterns {
                guard case .string(let text) = pattern.kind else {
                    diagnostics.error(pattern.location, "`include` expects strings, found \(pattern.typeDescription)")
                    continue
                }
                if depth + 1 > ConfigLimits.maximumIncludeDepth {
                    diagnostics.error(pattern.location, "includes are nested deeper than \(ConfigLimits.maximumIncludeDepth) levels")
                    continue
                }
                let absolute = ((text.hasPrefix("/") ? text : directory + "/" + text) as NSString).standardizingPath
                for path in expand(absolute, at: pattern.location) {
                    loadFile(path, includedFrom: pattern.location, depth: depth + 1)
                }
            }
        }
    }

    private mutating func expand(_ pattern: String, at location: SourceLocation) -> [String] {
        let hasWildcard = pattern.contains { $0 == "*" || $0 == "?" || $0 == "[" }
        guard hasWildcard else { return [pattern] }
        var matches = glob_t()
        defer { globfree(&matches) }
        // GLOB_ERR: a folder that cannot be read is an error, not "no match": an unreadable
        // conf.d would otherwise make every customer in it vanish without a word.
        errno = 0
        let status = glob(pattern, GLOB_ERR, nil, &matches)
        guard status == 0 else {
            // No match is fine: an empty conf.d is a valid state.
            if status != GLOB_NOMATCH && !(status == GLOB_ABORTED && (errno == ENOENT || errno == ENOTDIR)) {
                let reason = errno == EACCES || errno == EPERM ? "permission denied" : errno != 0 ? String(cString: strerror(errno)) : "the folder cannot be read"
                diagnostics.error(location, "cannot include \(pattern): cannot list its folder (\(reason))")
            }
            return []
        }
        var paths: [String] = []
        for i in 0..<Int(matches.gl_pathc) {
            if let p = matches.gl_pathv[i] { paths.append(String(cString: p)) }
        }
        if paths.count > ConfigLimits.maximumIncludedFiles {
            diagnostics.error(location, "\(pattern) matches \(paths.count) files, more than \(ConfigLimits.maximumIncludedFiles)")
            return []
        }
        return paths.sorted()
    }

    /// Decodes UTF-8, reporting the line and column of the first invalid byte.
    static func decodeUTF8(_ data: Data, file: String, diagnostics: inout DiagnosticList) -> String? {
        if let text = String(validating: data, as: UTF8.self) { return text }
        var line = 1, column = 1
        var iterator = data.makeIterator()
        var decoder = UTF8()
        loop: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                if scalar == "\n" { line += 1; column = 1 } else { column += 1 }
            case .emptyInput:
                break loop
            case .error:
                diagnostics.error(SourceLocation(file: file, line: line, column: column), "the file is not valid UTF-8 here (save it as UTF-8)")
                return nil
            }
        }
        return nil
    }
}
