import Glibc

/// The target of a symbolic link, `name` relative to the directory open as `directory`
/// (`AT_FDCWD`: a path; `""` with an `O_PATH` descriptor of the link itself), handed to
/// `body` as the bytes `readlinkat` wrote: the one way links are read. A target that fills
/// the buffer (`PATH_MAX` bytes) cannot be told from a cut one: ENAMETOOLONG.
package func withLinkTarget<T>(
    _ directory: Int32, _ name: String, _ body: (UnsafeRawBufferPointer) -> T
) throws(Errno) -> T {
    // Not zeroed first: only the bytes readlinkat says it wrote are read.
    let capacity = Int(PATH_MAX)
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 1)
    defer { buffer.deallocate() }
    let count = readlinkat(directory, name, buffer.assumingMemoryBound(to: CChar.self), capacity)
    guard count >= 0 else { throw .current }
    guard count < capacity else { throw .ENAMETOOLONG }
    return body(UnsafeRawBufferPointer(start: buffer, count: count))
}

/// The target of the symbolic link at `path` (or `name` in `directory`), as text. A target
/// in bytes that are not UTF-8 is EILSEQ: decoded, its bytes would become U+FFFD and name
/// another file than the one the kernel follows it to.
package func readSymbolicLink(_ path: String, in directory: Int32 = AT_FDCWD) throws(Errno) -> String {
    guard let target = try withLinkTarget(directory, path, { String(validating: $0, as: UTF8.self) }) else {
        throw .EILSEQ
    }
    return target
}
