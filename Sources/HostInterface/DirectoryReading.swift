/// What to read of one directory (a device's, in sysfs) through one descriptor: files,
/// links and subdirectories' listings, each named relative to it and never through a link.
package struct DirectoryRequest: Hashable, Sendable {
    package var files: [String] = []
    package var links: [String] = []
    package var listings: [String] = []
    /// Listed only where the `driver` link (asked among `links`) is there: what a driver
    /// makes when it binds (`vfio-dev/`), which an unbound device cannot have.
    package var listingsWhileBound: [String] = []

    package init(
        files: [String] = [], links: [String] = [], listings: [String] = [], listingsWhileBound: [String] = []
    ) {
        self.files = files
        self.links = links
        self.listings = listings
        self.listingsWhileBound = listingsWhileBound
    }

    /// The listings to read, once the links were read as `links`.
    package func listings(after links: [String: String]) -> [String] {
        let unbound = self.links.contains("driver") && links["driver"] == nil
        return unbound ? listings : listings + listingsWhileBound
    }
}

/// One directory as one look showed it: its inode (new for each device the kernel adds),
/// and what was asked of it. A name that is not there has no entry.
package struct DirectoryReading: Sendable, Equatable {
    package var inode: UInt64
    package var files: [String: String] = [:]
    package var links: [String: String] = [:]
    package var listings: [String: [String]] = [:]

    package init(inode: UInt64) { self.inode = inode }
}

extension DirectoryReading {
    /// The reading the single-path answers give: what `readDirectory` means. A name that
    /// is not there (ENOENT) is left out; the directory itself missing throws.
    package static func assembled(
        _ directory: String, _ request: DirectoryRequest, inode: UInt64,
        read: (String) throws(IOFailure) -> String, readLink: (String) throws(IOFailure) -> String,
        list: (String) throws(IOFailure) -> [String]
    ) throws(IOFailure) -> DirectoryReading {
        var reading = DirectoryReading(inode: inode)
        for name in request.files {
            do { reading.files[name] = try read(directory + "/" + name) } catch where error.errno == .ENOENT {}
        }
        for name in request.links {
            do { reading.links[name] = try readLink(directory + "/" + name) } catch where error.errno == .ENOENT {}
        }
        for name in request.listings(after: reading.links) {
            do {
                reading.listings[name] = try list(directory + "/" + name)
            } catch where error.errno == .ENOENT || error.errno == .ENOTDIR {}
        }
        return reading
    }
}
