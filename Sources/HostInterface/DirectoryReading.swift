import Policy

/// What to read of one directory (a device's, in sysfs) through one descriptor: files,
/// links and subdirectories' listings, each named relative to it and never through a link.
package struct DirectoryRequest: Hashable, Sendable {
    package var files: [String] = []
    package var links: [String] = []
    package var listings: [String] = []
    /// Listed only where the `driver` link (asked among `links`) names one of `vfio`: what a
    /// VFIO driver makes when it binds (`vfio-dev/`), which a device on no driver or on a
    /// host driver cannot have.
    package var listingsOnVFIO: [String] = []
    package var vfio = VFIODrivers()
    /// The caller knows the device whose directory this is, from a reading that told it apart
    /// (`DirectoryReading.tellsDeviceApart`), and takes this one only where it shows the same
    /// file system and inode: the entries may then be read by their paths and those after
    /// them. A reading that shows both again was of that directory throughout; one that shows
    /// others may hold entries of any directory that stood there meanwhile.
    package var ofKnownDevice = false

    package init(
        files: [String] = [], links: [String] = [], listings: [String] = [], listingsOnVFIO: [String] = [],
        vfio: VFIODrivers = VFIODrivers(), ofKnownDevice: Bool = false
    ) {
        self.files = files
        self.links = links
        self.listings = listings
        self.listingsOnVFIO = listingsOnVFIO
        self.vfio = vfio
        self.ofKnownDevice = ofKnownDevice
    }

    /// The listings to read, once the links were read as `links`.
    package func listings(after links: [String: String]) -> [String] {
        // Without the driver link asked, nothing tells which driver it is on: listed.
        let onVFIO = !self.links.contains("driver") || vfio.contains(links["driver"].flatMap(lastComponent))
        return onVFIO ? listings + listingsOnVFIO : listings
    }
}

/// One directory as one look showed it: its file system and inode (on sysfs, new for each
/// device the kernel adds), and what was asked of it. A name that is not there has no entry.
package struct DirectoryReading: Sendable, Equatable {
    package var inode: UInt64
    /// The file system it lies on (`st_dev`).
    package var fileSystem: UInt64 = 0
    /// Whether its file system and inode tell the device from every other that stood at its
    /// address: on sysfs they do (kernfs never gives a number twice, and a device's directory
    /// once gone never comes back), so what is known of the device may be kept while its
    /// directory shows them. A tree of files (a test bed, `--root`) does neither: ext4 gives
    /// a deleted directory's number to the next one made, and a directory can be renamed away
    /// and back.
    package var tellsDeviceApart = false
    package var files: [String: String] = [:]
    package var links: [String: String] = [:]
    package var listings: [String: [String]] = [:]

    package init(inode: UInt64) { self.inode = inode }

    /// Whether this look saw the directory with this file system and inode: the one question
    /// of every comparison of two looks, or of a look and what an identity was read from.
    package func shows(fileSystem: UInt64, inode: UInt64) -> Bool {
        self.fileSystem == fileSystem && self.inode == inode
    }
}

extension DirectoryReading {
    /// The reading the single-path answers give: what `readDirectory` means. Each answer
    /// is asked by the entry's name, relative to the directory. A name that is not there
    /// (ENOENT) is left out; the directory itself missing throws.
    package static func assembled(
        _ request: DirectoryRequest, inode: UInt64,
        read: (String) throws(IOFailure) -> String, readLink: (String) throws(IOFailure) -> String,
        list: (String) throws(IOFailure) -> [String]
    ) throws(IOFailure) -> DirectoryReading {
        var reading = DirectoryReading(inode: inode)
        for name in request.files {
            do { reading.files[name] = try read(name) } catch where error.errno == .ENOENT {}
        }
        for name in request.links {
            do { reading.links[name] = try readLink(name) } catch where error.errno == .ENOENT {}
        }
        for name in request.listings(after: reading.links) {
            do {
                reading.listings[name] = try list(name)
            } catch where error.errno == .ENOENT || error.errno == .ENOTDIR {}
        }
        return reading
    }
}
