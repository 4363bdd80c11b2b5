/// A value that is not `Sendable` (an IMAP session: its socket, buffers and parser state)
/// handed whole from one thread to another: whoever hands it over lets go of it, so it is only
/// ever used by one thread at a time. With `QueueOwned`, the only place the daemon vouches for
/// sendability itself; each use says who has the value and who gets it.
struct Handover<Value>: @unchecked Sendable {
    let value: Value

    init(_ value: Value) {
        self.value = value
    }
}
