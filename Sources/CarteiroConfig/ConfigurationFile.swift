/// The front door of the module: a path in, a validated configuration or every error out.
package enum ConfigurationFile {
    package struct Outcome: Sendable {
        /// nil when there is at least one error.
        package var configuration: Configuration?
        /// Errors and warnings, sorted by file, line and column.
        package var diagnostics: [Diagnostic]
        package var files: [String]

        package var errors: [Diagnostic] { diagnostics.filter { $0.severity == .error } }
        package var warnings: [Diagnostic] { diagnostics.filter { $0.severity == .warning } }
    }

    package static func load(path: String, environment: [String: String]) -> Outcome {
        finish(ConfigLoader.load(path: path), environment: environment)
    }

    package static func load(text: String, file: String, directory: String = ".", environment: [String: String] = [:]) -> Outcome {
        finish(ConfigLoader.load(text: text, file: file, directory: directory), environment: environment)
    }

    private static func finish(_ loaded: ConfigLoader.Result, environment: [String: String]) -> Outcome {
        var diagnostics = loaded.diagnostics
        // A file that cannot be read has no [daemon] table to miss: one error, the real one.
        if loaded.mainFileUnreadable {
            return Outcome(configuration: nil, diagnostics: diagnostics.sorted(fileOrder: loaded.files), files: loaded.files)
        }
        let configuration = ConfigurationBuilder(environment: environment).build(loaded.document, files: loaded.files, diagnostics: &diagnostics)
        return Outcome(configuration: configuration, diagnostics: diagnostics.sorted(fileOrder: loaded.files), files: loaded.files)
    }
}
