import HotplugAgent
import HostInterface
import Policy

/// `plan --json`: the decisions `plan` prints, one object per device, in address order.
struct PlanJSON: Encodable {
    struct Decision: Encodable {
        /// `step`, `refused`, `waiting` or `warning`.
        var kind: String
        var what: String
        var reason: String
    }

    struct Device: Encodable {
        var address: String
        var id: String
        var `class`: String
        var driver: String?
        var policy: String?
        /// The peer whose policy's claim-group applies.
        var via: String?
        var decisions: [Decision]
    }

    var devices: [Device]

    init(_ plans: [DevicePlan]) {
        devices = plans.map { plan in
            let decisions =
                plan.steps.map { Decision(kind: "step", what: $0.action.summary, reason: $0.reason) }
                + plan.refusals.map { Decision(kind: "refused", what: $0.what, reason: $0.reason) }
                + plan.waits.map { Decision(kind: "waiting", what: $0.what, reason: $0.reason) }
                + plan.warnings.map { Decision(kind: "warning", what: "", reason: $0) }
            return Device(
                address: plan.device.address.description, id: plan.device.id.description, class: plan.device.classHex,
                driver: plan.device.driver, policy: plan.policy, via: plan.via?.description, decisions: decisions)
        }
    }

    var text: String { prettyJSON(self) }
}
