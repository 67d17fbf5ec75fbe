import HostInterface
@testable import AgentCommands
@testable import HotplugAgent
@testable import Simulation
import Policy
import Testing

struct DoctorTests {
    func findings(_ host: SimHost, files: [String: String] = [:]) -> [Doctor.Finding] {
        let accounts = TableAccounts(users: host.description.users ?? [:], groups: host.description.groups ?? [:])
        return Doctor(
            reader: host.reader, policies: host.agent.planner.policies, readFile: { files[$0] },
            accounts: accountNames(host.agent.planner.policies, accounts)
        ).run()
    }

    @Test func gpusBehindPLXSwitchesWithResetsEnabledAreFlagged() throws {
        let withoutResetFix = try SimHost.examplePolicy("seed-000").replacingOccurrences(
            of: "sysfs = [\"reset_method=\"]\n", with: "")
        let host = try SimHost("seed-000-mi300x.json", policies: withoutResetFix)
        let results = findings(host)
        let flagged = results.filter { $0.status == .fail && $0.message.contains("PLX/Broadcom switch") }
        #expect(flagged.count == 8)
        #expect(
            flagged.first?.description
                == "FAIL 0000:12:00.0 [mi300x]: behind PLX/Broadcom switch 0000:11:00.0 with resets enabled (flr bus): "
                + "a reset there makes the GPU's BARs vanish; fix: keep only a reset the switch survives in policy "
                    + "\"mi300x\" "
                + "(sysfs = [\"reset_method=device_specific\"], or the vendor-reset module); \"reset_method=\" "
                    + "disables every reset, "
                + "and the GPU then carries one guest's memory into the next")
        #expect(results.contains { $0.status == .pass && $0.subject == "IOMMU" })
        #expect(results.filter { $0.message == "IOMMU group 12 is viable for VFIO once the policies apply" }.count == 1)
    }

    @Test func theExamplePolicyDisablesThoseResetsAndDoctorWarnsWhatThatCosts() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        #expect(!findings(host).contains { $0.message.contains("PLX/Broadcom switch") })
        #expect(host.runOnce())
        let after = findings(host)
        let disabled = after.filter { $0.message.hasPrefix("resets disabled by the policy") }
        #expect(disabled.count == 8)
        #expect(disabled.allSatisfy { $0.status == .warn })
        #expect(
            disabled.first?.description
                == "WARN 0000:12:00.0 [mi300x]: resets disabled by the policy: the device is never reset, "
                + "so what one VM left in it reaches the next; fix: use a reset that works on it (reset_method bus or "
                    + "device_specific, "
                + "or the vendor-reset module), or give the device to one tenant only")
        #expect(!after.contains { $0.status == .fail })
    }

    @Test func limitsForTheVMUserAndAGroupThatIsNotViable() throws {
        let host = try SimHost(
            "seed-004-x570.json",
            policies: """
                [[policy]]
                name = "gpu"
                match.ids = ["1002:73bf"]
                driver = "vfio-pci"
                owner = "agd"
                """)
        let results = findings(
            host, files: ["/etc/security/limits.conf": "@kvm hard memlock unlimited\n* hard nofile 1024\n"])
        let limits = try #require(results.first { $0.subject == "limits for agd" })
        #expect(limits.status == .warn)
        #expect(limits.message.hasPrefix("memlock is the default (8 MiB), nofile is 1024"))
        let group = try #require(
            results.first { $0.subject == "0000:0c:00.0 [gpu]" && $0.message.hasPrefix("IOMMU group 20") })
        #expect(
            group.status == .fail && group.fix == "claim-group = true, or policies for the other devices of group 20")
        let fixed = findings(
            host, files: ["/etc/security/limits.conf": "agd hard memlock unlimited\nagd - nofile 8192\n"])
        #expect(fixed.first { $0.subject == "limits for agd" }?.status == .pass)
    }

    /// A policy that names its VM user by number: the host's name for it, or else the uid
    /// range pam_limits reads (`:2000` is uid 2000 alone); a range holding it counts.
    @Test func aVMUserNamedByNumberIsLookedUpAndMatchedByUIDRange() throws {
        var description = try SimHost.load("seed-004-x570.json")
        description.users = ["agd": 1000]
        let policy = { (uid: Int) in
            "[[policy]]\nname = \"gpu\"\nmatch.ids = [\"1002:73bf\"]\ndriver = \"vfio-pci\"\nowner = \"\(uid)\"\n"
        }
        let named = try SimHost(description, policies: policy(1000))
        let byName = try #require(findings(named).first { $0.subject == "limits for agd" })
        #expect(byName.fix?.hasPrefix("in /etc/security/limits.conf: agd hard memlock unlimited") == true)
        let unnamed = try SimHost(description, policies: policy(2000))
        let byUID = try #require(findings(unnamed).first { $0.subject == "limits for 2000" })
        #expect(byUID.status == .warn)
        #expect(byUID.fix?.contains(":2000 hard memlock unlimited, :2000 hard nofile 8192") == true)
        for domain in [":2000", "2000:", "1500:2500"] {
            let conf = "\(domain) hard memlock unlimited\n\(domain) - nofile 8192\n"
            let fixed = findings(unnamed, files: ["/etc/security/limits.conf": conf])
            #expect(fixed.first { $0.subject == "limits for 2000" }?.status == .pass, "\(domain)")
        }
        let others = ":1999 hard memlock unlimited\n2001: - nofile 8192\n"
        let elsewhere = findings(unnamed, files: ["/etc/security/limits.conf": others])
        #expect(elsewhere.first { $0.subject == "limits for 2000" }?.status == .warn)
    }

    @Test func theAtomicOpsPathIsChecked() throws {
        let routes = try SimHost("seed-001-fiji.json", policies: try SimHost.examplePolicy("seed-001"))
        #expect(findings(routes).filter { $0.message == "the path to the root port carries AtomicOps" }.count == 2)
        let blocked = try SimHost("seed-001-fiji-no-atomics.json", policies: try SimHost.examplePolicy("seed-001"))
        #expect(
            findings(blocked).filter { $0.status == .fail && $0.message.contains("switch downstream port 0000:0a:") }
                .count == 2)
    }
}
