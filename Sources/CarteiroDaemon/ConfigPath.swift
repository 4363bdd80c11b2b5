/// Where the configuration is when `--config` is not given.
package enum ConfigPath {
    package static func resolve(_ explicit: String?, environment: [String: String]) -> String {
        if let explicit { return explicit }
        if let directory = environment["CONFIGURATION_DIRECTORY"]?.split(separator: ":").first, !directory.isEmpty {
            return "\(directory)/carteiro.conf"
        }
        return "/etc/carteiro/carteiro.conf"
    }
}
