import Foundation
import XCTest

/// The ring all-reduce across real worker processes on loopback (sockets on port 0).
final class AllReduceCommandTests: XCTestCase {
    struct Row: Decodable {
        let codec: String
        let seconds: Double
        let bytesSentPerWorker: Int
        let relativeRMSError: Double
        let workersAgree: Bool
        let fractionOfLink: Double?
    }

    func testWorkerProcessesAgreeAndSendTheRingsBytes() throws {
        let values = 500_000 // 2 MB
        let r = try runTributary(["bench", "allreduce", "--workers", "3", "--size", "2MB", "--link", "400mbit,2ms",
                                "--codec", "fp32,int8,topk", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let rows = try JSONDecoder().decode([Row].self, from: Data(r.stdout.utf8))
        XCTAssertEqual(rows.map { $0.codec }, ["fp32", "int8/4096", "top64of4096/2bit"])
        for row in rows { XCTAssertTrue(row.workersAgree, "\(row.codec): workers disagree") }
        XCTAssertLessThan(rows[0].relativeRMSError, 1e-6)
        XCTAssertLessThan(rows[1].relativeRMSError, 0.02)
        // Each worker sends 2(n−1)/n of the payload, in frames of about an eighth of a chunk
        // (whole 4096-value blocks) with 52-byte headers.
        let chunk = values / 3 + 1
        let piece = (chunk / 8 + 4095) / 4096 * 4096
        let frames = 2 * 2 * ((chunk + piece - 1) / piece)
        let expected = Double(2 * 2 * 4 * values / 3 + frames * 52)
        XCTAssertEqual(Double(rows[0].bytesSentPerWorker), expected, accuracy: 8 + 52 * 4)
        XCTAssertLessThan(rows[1].bytesSentPerWorker, rows[0].bytesSentPerWorker / 3)
        XCTAssertGreaterThan(rows[0].fractionOfLink ?? 0, 0.3, "fp32 goodput far below the emulated link")
    }

    /// Real shaping: one namespace per worker, veth edges limited by tc tbf. Needs root.
    func testNetworkNamespaceRingIsShapedForReal() throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/sbin/tc") else {
            throw XCTSkip("needs root and iproute2 to create network namespaces")
        }
        let r = try runTributary(["bench", "allreduce", "--netns", "--workers", "3", "--size", "4MB", "--link", "80mbit,2ms",
                                  "--codec", "fp32", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let rows = try JSONDecoder().decode([Row].self, from: Data(r.stdout.utf8))
        XCTAssertTrue(rows[0].workersAgree)
        XCTAssertLessThan(rows[0].relativeRMSError, 1e-6)
        // tbf holds the goodput under the configured rate (TCP/IP headers take a few percent).
        let fraction = try XCTUnwrap(rows[0].fractionOfLink)
        XCTAssertLessThan(fraction, 1.0)
        XCTAssertGreaterThan(fraction, 0.5)
    }

    /// Two workers post whole 120 MB chunks before they read: once more than the 64 MB a link
    /// buffered before it stopped reading, which left both blocked on writes for good. Over mutual
    /// TLS (what runs use) and plain TCP, the sums agree and are exact.
    func testChunksLargerThanALinksBufferDoNotDeadlockOverTLSOrPlain() throws {
        let r = try runTributary(["bench", "allreduce", "--workers", "2", "--size", "240MB", "--link", "unlimited",
                                  "--codec", "fp32", "--security", "tls,plain", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let rows = try JSONDecoder().decode([Row].self, from: Data(r.stdout.utf8))
        XCTAssertEqual(rows.count, 2)
        for row in rows {
            XCTAssertTrue(row.workersAgree)
            XCTAssertLessThan(row.relativeRMSError, 1e-6)
        }
    }

    func testBadFlagsAreOneLineErrors() throws {
        let cases: [([String], String)] = [(["--link", "fast"], "link spec 'fast'"), (["--codec", "int9"], "unknown codec 'int9'"),
                                           (["--size", "lots"], "--size")]
        for (args, message) in cases {
            let r = try runTributary(["bench", "allreduce"] + args)
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.stderr.contains(message), r.stderr)
        }
    }
}
