import Glibc

/// An environment variable's value; nil when it is not set.
package func getenvString(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    return String(cString: value)
}
