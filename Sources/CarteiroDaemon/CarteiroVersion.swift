/// The version `carteiro --version` prints (and a package is named after).
package enum CarteiroVersion {
    package static let string = "0.9.0"
}
