/// The version `carteiro --version` prints (and a package is named after).
public enum CarteiroVersion {
    public static let string = "0.9.0"
}
