import Policy
import Testing

struct MatchTests {
    func matches(_ toml: String, _ device: PCIDevice) -> Bool {
        Fixture.policies("[[policy]]\nname = \"p\"\n" + toml).firstMatch(for: device) != nil
    }

    let gpu = Fixture.device("0000:0b:00.0", "1002:74a1", class: 0x120000, driver: "amdgpu", subsystem: "1002:0c34")

    @Test func idsMatchAnyCaseAndWildcards() {
        #expect(matches("match.ids = [\"1002:74A1\"]", gpu))
        #expect(matches("match.ids = [\"1002:*\"]", gpu))
        #expect(matches("match.ids = [\"*:74a1\"]", gpu))
        #expect(!matches("match.ids = [\"1002:74a0\", \"10de:*\"]", gpu))
    }

    /// The kernel's `VVVV:DDDD` (a uevent's PCI_ID) in either case; nothing else.
    @Test func anIDIsFourHexDigitsAColonAndFourMore() {
        #expect(PCIID("1002:73bf") == PCIID(vendor: 0x1002, device: 0x73bf))
        #expect(PCIID("1002:73BF") == PCIID(vendor: 0x1002, device: 0x73bf))
        #expect(PCIID("FFFF:0000") == PCIID(vendor: 0xffff, device: 0))
        for bad in [
            "1002:73b", "1002:73bff", "100273bf", ":1002:73b", "*:1234", "10g2:73bf", "1002::3bf", "",
            "1002:73bf\n", " 1002:73bf", "+002:73bf", "1002:\u{0}3bf", "١٠٠٢:73bf"
        ] {
            #expect(PCIID(bad) == nil, "\(bad)")
        }
    }

    /// Zero-padded hex as sysfs (lower case) and uevents (upper case) print it; a value wider
    /// than the width is printed whole.
    @Test func hexIsPaddedToItsWidthAndNeverCut() {
        #expect(hex(0, width: 4) == "0000")
        #expect(hex(UInt8(0xb), width: 2) == "0b")
        #expect(hex(0x73bf, width: 4, uppercase: true) == "73BF")
        #expect(hex(0x12345, width: 4) == "12345")
        #expect(hex(UInt64.max, width: 2) == "ffffffffffffffff")
        #expect(hex(0xab, width: 20) == String(repeating: "0", count: 18) + "ab")
        for value in [0, 1, 0xf, 0x10, 0xfff, 0x1000, Int(UInt32.max)] {
            #expect(Int(hex(value, width: 1), radix: 16) == value)
        }
    }

    @Test func subsystemIDs() {
        #expect(matches("match.subsystem-ids = [\"1002:0c34\"]", gpu))
        #expect(!matches("match.subsystem-ids = [\"1002:0c35\"]", gpu))
    }

    @Test func classIsAPrefixOfTheSixDigitCode() {
        #expect(matches("match.class = [\"12\"]", gpu))
        #expect(matches("match.class = [\"1200\"]", gpu))
        #expect(matches("match.class = [\"03\", \"120000\"]", gpu))
        #expect(!matches("match.class = [\"0302\"]", gpu))
    }

    @Test func slotsGlobAndAcceptTheShortForm() {
        #expect(matches("match.slots = [\"0000:0b:00.0\"]", gpu))
        #expect(matches("match.slots = [\"0000:0b:00.?\"]", gpu))
        #expect(matches("match.slots = [\"0b:00.0\"]", gpu))
        #expect(matches("match.slots = [\"0B:*\"]", gpu))
        #expect(!matches("match.slots = [\"0001:0b:00.0\"]", gpu))
        #expect(!matches("match.slots = [\"0c:00.0\"]", gpu))
        let other = Fixture.device("0002:01:00.0", "10de:15f9")
        #expect(matches("match.slots = [\"01:00.0\"]", other))
    }

    @Test func driverNamesTheCurrentDriverOrNone() {
        #expect(matches("match.driver = [\"amdgpu\"]", gpu))
        #expect(!matches("match.driver = [\"none\"]", gpu))
        #expect(matches("match.driver = [\"none\"]", Fixture.device("0000:0b:00.0", "1002:74a1")))
    }

    @Test func aPolicyKeepsTheDevicesItMovedDespiteMatchDriver() {
        let moved = Fixture.device("0000:0b:00.0", "1002:74a1", driver: "vfio-pci")
        #expect(matches("match.driver = [\"amdgpu\"]\ndriver = \"vfio-pci\"", moved))
        #expect(!matches("match.driver = [\"amdgpu\"]", moved))
    }

    @Test func vfAndPFIDs() {
        let vf = Fixture.device("0000:4d:00.1", "8086:56c0", physfn: "0000:4d:00.0", pfID: "8086:56c0")
        let pf = Fixture.device("0000:4d:00.0", "8086:56c0")
        #expect(matches("match.vf = true", vf))
        #expect(!matches("match.vf = true", pf))
        #expect(matches("match.vf = false", pf))
        #expect(matches("match.pf-ids = [\"8086:56c0\"]", vf))
        #expect(!matches("match.pf-ids = [\"8086:56c0\"]", pf))
    }

    @Test func everyGivenKeyMustHold() {
        #expect(matches("match.ids = [\"1002:74a1\"]\nmatch.class = [\"12\"]", gpu))
        #expect(!matches("match.ids = [\"1002:74a1\"]\nmatch.class = [\"03\"]", gpu))
    }

    @Test func theFirstMatchingPolicyWins() {
        let set = Fixture.policies(
            """
            [[policy]]
            name = "narrow"
            match.ids = ["1002:74a1"]
            [[policy]]
            name = "broad"
            match.ids = ["1002:*"]
            """)
        #expect(set.firstMatch(for: gpu)?.name == "narrow")
        #expect(set.firstMatch(for: Fixture.device("0000:0c:00.0", "1002:73bf"))?.name == "broad")
    }

    @Test func globMatcher() {
        #expect(globMatch("*", ""))
        #expect(globMatch("a*c", "abbbc"))
        #expect(!globMatch("a*c", "abbb"))
        #expect(globMatch("??:*", "0b:00.0"))
    }
}

struct ParsingTests {
    @Test func linesOfMultiLineArraysAndInlineTables() {
        let toml = """
            [[policy]]
            name = "a"
            match = { ids = ["1002:74a1"] }
            config = [
              "80.b=40",
              '80.b=zz',
            ]
            """
        let parsed = PolicyParser(accounts: TestAccounts()).parse(toml, file: "f.toml")
        #expect(parsed.errors.map(\.description) == ["f.toml:6: config: \"80.b=zz\": invalid value \"zz\""])
    }

    @Test func errorsWithoutALineNameTheKeyPath() {
        let error = PolicyError(
            file: "/etc/hotplug-agent/policies.d/10-gpu.toml", key: "match.ids", policyIndex: 2,
            message: "\"1002:74a\" is not vvvv:dddd")
        #expect(
            error.description
                == "/etc/hotplug-agent/policies.d/10-gpu.toml: policy[2].match.ids: \"1002:74a\" is not vvvv:dddd")
    }

    @Test func configExpressionsAreSetpcis() throws {
        let cap = try ConfigWrite.parse("CAP_EXP+28.w=0040:0040").get()
        #expect(
            cap.base == .capability(0x10) && cap.offset == 0x28 && cap.width == 2 && cap.value == 0x40
                && cap.mask == 0x40)
        let plain = try ConfigWrite.parse("80.b=40").get()
        #expect(plain.base == .absolute && plain.offset == 0x80 && plain.mask == 0xff)
        #expect(try ConfigWrite.parse("ecap_acs+6.w=0").get().base == .extendedCapability(0x0d))
        #expect(try ConfigWrite.parse("CAP10+28.W=40:40").get().base == .capability(0x10))
        #expect(try ConfigWrite.parse("80.b=ff:0f").get().value == 0x0f)
    }

    @Test func attributeWrites() throws {
        #expect(
            try AttributeWrite.parse("reset_method=").get() == AttributeWrite(components: ["reset_method"], value: ""))
        #expect(try AttributeWrite.parse("drm/card*/x=a=b").get().value == "a=b")
        // In bytes, as the kernel takes them: a `/` before a combining mark still parts two
        // names (so `physfn` is seen), a `\r\n` is still a newline, an `=` still an `=`.
        #expect(throws: PolicyMessage.self) { try AttributeWrite.parse("physfn/\u{301}x=1").get() }
        #expect(throws: PolicyMessage.self) { try AttributeWrite.parse("x=a\r\nb").get() }
        #expect(throws: PolicyMessage.self) { try AttributeWrite.parse("/\u{301}x=1").get() }
        #expect(try AttributeWrite.parse("x=\u{301}v").get() == AttributeWrite(components: ["x"], value: "\u{301}v"))
        #expect(try AttributeWrite.parse("a/\u{301}b=1").get().components == ["a", "\u{301}b"])
    }

    /// File names are told apart, masked and ordered by their bytes, as the file system
    /// names them: `é` as one scalar and as `e` with a combining mark are two files, a `.`
    /// before a combining mark still hides a file, a mark before `.toml` does not hide it.
    @Test func policyFilesAreToldApartByTheirBytes() {
        let (composed, decomposed) = ("10-caf\u{e9}.toml", "10-cafe\u{301}.toml")
        #expect(
            PolicySources.select([(directory: "/etc/p", names: [composed]), (directory: "/usr/p", names: [decomposed])])
                == ["/usr/p/" + decomposed, "/etc/p/" + composed])
        #expect(!PolicySources.isPolicyFileName(".\u{301}hidden.toml"))
        #expect(PolicySources.isPolicyFileName("50-x\u{600}.toml"))
        #expect(!PolicySources.isPolicyFileName(".toml") && !PolicySources.isPolicyFileName("x.toml\u{301}"))
    }

    /// Hex values, classes, slots and capability names are ASCII: a fullwidth digit is not a
    /// hex digit to the kernel, nor `ſ` an `S` to setpci.
    @Test func hexAndCapabilityNamesAreASCII() throws {
        for text in ["\u{ff10}\u{ff13}", "0\u{ff13}", "\u{ff10}\u{ff13}00"] {
            #expect(
                PolicyParser(accounts: TestAccounts()).parse(
                    "[[policy]]\nname = \"x\"\nmatch.class = [\"\(text)\"]\n", file: "t.toml"
                ).errors.count == 1)
        }
        #expect(
            PolicyParser(accounts: TestAccounts()).parse(
                "[[policy]]\nname = \"x\"\nmatch.slots = [\"0000:\u{ff10}b:00.0\"]\n", file: "t.toml"
            ).errors.count == 1)
        for text in [
            "ECAP_\u{17f}RIOV+4.w=1", "ECAP_\u{131}DE+4.w=1", "\u{ff18}0.b=1", "80.b=\u{ff11}", "CAP_EXP+28.\u{1d5c}=0"
        ] {
            #expect(throws: PolicyMessage.self, "\(text)") { try ConfigWrite.parse(text).get() }
        }
        #expect(
            try ConfigWrite.parse("ecap_sriov+4.W=1").get().base == ConfigWrite.parse("ECAP_SRIOV+4.w=1").get().base)
        #expect(PCIIDPattern("\u{ff11}002:73bf") == nil)
    }

    @Test func policyFilesMaskAndSort() {
        let chosen = PolicySources.select([
            (directory: "/etc/p", names: ["20-b.toml", "README", ".x.toml", "10-a.toml"]),
            (directory: "/usr/lib/p/", names: ["10-a.toml", "05-z.toml", "30-c.TOML"])
        ])
        #expect(chosen == ["/usr/lib/p/05-z.toml", "/etc/p/10-a.toml", "/etc/p/20-b.toml"])
    }
}
