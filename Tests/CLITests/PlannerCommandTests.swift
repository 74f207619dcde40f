import Foundation
import XCTest

/// `bench engine --calibration` writes this CPU as a planner device that `plan --devices` uses;
/// a shipped multi-site example plans; a wrong link field is named with its line.
final class PlannerCommandTests: XCTestCase {
    func testCalibratedCPUPlansAndExamplesPlan() throws {
        let dir = try temporaryDirectory()
        let devices = dir.appendingPathComponent("cpu.yaml")
        let bench = try runTributary(["bench", "engine", "--threads", "1", "--steps", "1", "--only", "L4-C256-B8-T256",
                                      "--calibration", devices.path])
        XCTAssertEqual(bench.status, 0, bench.stderr)
        XCTAssertTrue(bench.stdout.contains("local-cpu for the planner"), bench.stdout)
        let text = try String(contentsOf: devices, encoding: .utf8)
        XCTAssertTrue(text.contains("narrowMatrixWidth") && text.contains("achievable"), text)

        let cluster = dir.appendingPathComponent("here.yaml")
        try "name: here\nsites:\n  - {name: laptop, device: local-cpu, count: 1}\n".write(to: cluster, atomically: true, encoding: .utf8)
        let plan = try runTributary(["plan", "--cluster", cluster.path, "--devices", devices.path, "--model", "L4-H128-A4",
                                     "--sequence", "128", "--batch-tokens", "4096", "--json"])
        XCTAssertEqual(plan.status, 0, plan.stderr)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any])
        let chosen = try XCTUnwrap(json["chosen"] as? [String: Any])
        let sites = try XCTUnwrap(chosen["sites"] as? [[String: Any]])
        XCTAssertEqual(sites.first?["device"] as? String, "local-cpu")
        XCTAssertEqual(chosen["fits"] as? Bool, true)

        // The shipped DT-FM example: per-device links, the ring ordered for them.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let worldwide = try runTributary(["plan", "--cluster", root.appendingPathComponent("configs/clusters/dtfm-worldwide.yaml").path,
                                          "--model", "L24-H2048-A16", "--batch-tokens", "8M"])
        XCTAssertEqual(worldwide.status, 0, worldwide.stderr)
        XCTAssertTrue(worldwide.stdout.contains("per device"), worldwide.stdout)

        let broken = dir.appendingPathComponent("broken.yaml")
        try "name: b\nsites:\n  - {name: a, device: A100-80GB, count: 8}\n  - {name: c, device: H20, count: 8}\nlinks:\n  efficiency: 2\n  default: {gbps: 1, latencyMs: 5}\n"
            .write(to: broken, atomically: true, encoding: .utf8)
        let refused = try runTributary(["plan", "--cluster", broken.path])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("links.efficiency") && refused.stderr.contains("broken.yaml:6"), refused.stderr)
    }

    /// A user's own layout is predicted as given; the published runs check from the command
    /// line; bad layouts, models and devices are refused in one line that says where.
    func testGivenLayoutsPublishedRunsAndRefusals() throws {
        let dir = try temporaryDirectory()
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let cluster = dir.appendingPathComponent("c.yaml")
        try "name: c\nsites:\n  - {name: rack, device: A100-80GB, count: 64}\n".write(to: cluster, atomically: true, encoding: .utf8)
        let given = try runTributary(["plan", "--cluster", cluster.path, "--model", "llama2-13b", "--batch-sequences", "128",
                                      "--layout", "tp2,pp1,dp32,mb2,recompute,zero1", "--sync", "every-step", "--json"])
        XCTAssertEqual(given.status, 0, given.stderr)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(given.stdout.utf8)) as? [String: Any])
        let chosen = try XCTUnwrap(json["chosen"] as? [String: Any])
        let layout = try XCTUnwrap((chosen["sites"] as? [[String: Any]])?.first?["layout"] as? [String: Any])
        XCTAssertEqual(layout["tensorParallel"] as? Int, 2)
        XCTAssertEqual(layout["zeroStage"] as? Int, 1)
        let throughput = try XCTUnwrap(chosen["throughput"] as? [String: Any])
        XCTAssertEqual(throughput["devices"] as? Int, 64)

        let check = try runTributary(["plan-check", "--runs", root.appendingPathComponent("configs/planner/published-runs.yaml").path, "--json"])
        XCTAssertEqual(check.status, 0, check.stderr)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(check.stdout.utf8)) as? [String: Any])
        XCTAssertGreaterThanOrEqual((report["runs"] as? [Any])?.count ?? 0, 30)
        XCTAssertNotNil(report["medianAbsoluteError"] as? Double)

        for (flags, expected) in [(["--layout", "tp2,pp1,dp32,sp4"], "'sp4'"), (["--model", "L24-H2048-A16-V131072-junk"], "'junk'"),
                                  (["--attention", "flash"], "--attention"), (["--sync", "sometimes"], "every-step")] {
            let refused = try runTributary(["plan", "--cluster", cluster.path] + flags)
            XCTAssertNotEqual(refused.status, 0, "\(flags)")
            XCTAssertTrue(refused.stderr.contains(expected), "\(flags): \(refused.stderr)")
            XCTAssertEqual(refused.stderr.split(separator: "\n").count, 1, refused.stderr)
        }
        try "name: c\nsites:\n  - name: home\n    device: RTX-2070\n    count: 2\n".write(to: cluster, atomically: true, encoding: .utf8)
        let unknown = try runTributary(["plan", "--cluster", cluster.path])
        XCTAssertNotEqual(unknown.status, 0)
        XCTAssertTrue(unknown.stderr.contains("c.yaml:4") && unknown.stderr.contains("RTX-"), unknown.stderr)
    }
}
