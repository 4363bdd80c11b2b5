#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Reads passwords from wherever the configuration says they are.
package struct SecretResolver: Sendable {
    package struct Failure: Error, Sendable, CustomStringConvertible {
        package var description: String
    }

    package var environment: [String: String]
    /// Where an operator keeps credentials outside the service: `credentials/` beside the main
    /// configuration file (`/etc/carteiro/credentials/NAME`), the directory the unit's
    /// `LoadCredential=` lines read from.
    package var credentialsFallback: String?

    package init(environment: [String: String], configurationFile: String? = nil) {
        self.environment = environment
        credentialsFallback = configurationFile.map { Self.credentialsDirectory(configurationFile: $0) }
    }

    package static func credentialsDirectory(configurationFile: String) -> String {
        var directory = (configurationFile as NSString).deletingLastPathComponent
        if directory.isEmpty { directory = "." }
        return directory + "/credentials"
    }

    /// A password file is at most a line; anything bigger is the wrong file.
    static let maximumSecretFileSize = 64 * 1024

    package func resolve(_ source: SecretSource) -> Result<Secret, Failure> {
        switch source {
        case .inline(let secret):
            return .success(secret)
        case .environment(let name):
            guard let value = environment[name], !value.isEmpty else {
                return .failure(Failure(description: "the environment variable \(name) (password_env) is not set"))
            }
            return .success(Secret(value))
        case .file(let path):
            return readFile(path, what: "password_file")
        case .credential(let name):
            let source = credentialsFallback.map { "\($0)/\(name)" } ?? "/etc/carteiro/credentials/\(name)"
            if let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty {
                let result = readFile(directory + "/" + name, what: "credential \(name)")
                if case .failure(let failure) = result, !DurableFilesProbe.exists(directory + "/" + name) {
                    return .failure(Failure(description: "\(failure.description): the unit does not load it; add LoadCredential=\(name):\(source) (`carteiro check-config --units` prints the lines)"))
                }
                return result
            }
            // Outside the service (an operator's shell): where the unit loads it from.
            guard let fallback = credentialsFallback else {
                return .failure(Failure(description: "password_credential \(name) needs systemd's $CREDENTIALS_DIRECTORY (LoadCredential=\(name):… in the unit), and it is not set"))
            }
            let path = fallback + "/" + name
            if !DurableFilesProbe.exists(path) {
                return .failure(Failure(description: "credential \(name): not running under systemd ($CREDENTIALS_DIRECTORY is not set), and \(path) does not exist; keep the password there (chmod 600), the file the unit's LoadCredential=\(name):\(path) reads"))
            }
            return readFile(path, what: "credential \(name)")
        }
    }

    /// A secret that is a whole document (a service account's JSON key), not a line.
    package func resolveDocument(_ source: SecretSource) -> Result<Secret, Failure> {
        let path: String
        switch source {
        case .inline, .environment: return resolve(source)
        case .file(let file): path = file
        case .credential(let name):
            if let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty { path = directory + "/" + name }
            else { path = (credentialsFallback ?? "/etc/carteiro/credentials") + "/" + name }
        }
        switch RegularFile.read(path, limit: Self.maximumSecretFileSize) {
        case .success(let bytes):
            guard let text = String(validating: bytes, as: UTF8.self), !text.isEmpty else {
                return .failure(Failure(description: "\(path) is empty or not UTF-8 text"))
            }
            return .success(Secret(text))
        case .failure(let problem): return .failure(Failure(description: "\(path) \(problem)"))
        }
    }

    private func readFile(_ path: String, what: String) -> Result<Secret, Failure> {
        let data: [UInt8]
        switch RegularFile.read(path, limit: Self.maximumSecretFileSize) {
        case .success(let bytes): data = bytes
        case .failure(let problem): return .failure(Failure(description: "\(what) \(path) \(problem)"))
        }
        // A NUL is no character of a password (and no server takes one): /dev/zero and
        // binary files end here with their real reason.
        if data.contains(0) { return .failure(Failure(description: "\(what) \(path) holds NUL bytes: it is not a text file")) }
        guard let text = String(validating: data, as: UTF8.self) else {
            return .failure(Failure(description: "\(what) \(path) is not UTF-8 text"))
        }
        // The first line is the password: editors add a final newline, and that is not part of it.
        let first = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }).first.map(String.init) ?? ""
        guard !first.isEmpty else {
            return .failure(Failure(description: "\(what) \(path) is empty"))
        }
        return .success(Secret(first))
    }

    /// Warnings an operator should see: secrets that cannot be read here, and files holding a
    /// password that every local user can read.
    package func audit(_ configuration: Configuration) -> [Diagnostic] {
        var findings: [Diagnostic] = []
        let sources = configuration.secretSources.map { ($0.source, $0.location, $0.owner) }
        var warnedFiles: Set<String> = []
        for (source, location, name) in sources {
            switch source {
            case .inline:
                if Self.isReadableByOthers(location.file), warnedFiles.insert(location.file).inserted {
                    findings.append(Diagnostic(.warning, at: location, "\(location.file) holds a password and every user of this machine can read it (chmod 640, or move the password to password_credential)"))
                }
            case .file(let path):
                if case .failure(let failure) = resolve(source) {
                    findings.append(Diagnostic(.warning, at: location, "\(name): \(failure)"))
                } else if Self.isReadableByOthers(path) {
                    let key = name.hasPrefix("mailbox") ? "password_file " : ""
                    findings.append(Diagnostic(.warning, at: location, "\(name): \(key)\(path) can be read by every user of this machine (chmod 600 it)"))
                }
            case .environment, .credential:
                if case .failure(let failure) = resolve(source) {
                    findings.append(Diagnostic(.warning, at: location, "\(name): \(failure) here; the daemon needs it"))
                }
            }
        }
        return findings
    }

    /// The `LoadCredential=` lines the configuration needs under systemd: one per
    /// `password_credential`, read from `credentials/` beside the configuration file.
    package func loadCredentialLines(_ configuration: Configuration) -> [String] {
        var names: [String] = []
        for case .credential(let name) in configuration.secretSources.map(\.source) where !names.contains(name) { names.append(name) }
        let directory = credentialsFallback ?? "/etc/carteiro/credentials"
        return names.map { "LoadCredential=\($0):\(directory)/\($0)" }
    }

    static func isReadableByOthers(_ path: String) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        return info.st_mode & S_IROTH != 0
    }
}

enum DurableFilesProbe {
    static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }
}
