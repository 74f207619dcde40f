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
}
