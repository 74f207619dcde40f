import NIOCore
import Wire
import XCTest

/// A state download as frames: whole and in order it completes with every value; a chunk out of
/// order, too large, repeated or altered, an early end or a stray frame is refused with the reason.
final class StateDownloadTests: XCTestCase {
    let state: [Float] = (0..<1000).map { Float($0) * 0.37 - 100 }

    func frames(chunk: Int = 64) -> [Frame] {
        state.withUnsafeBufferPointer { values in
            var upload = StateUpload(state: values, runID: 5, sender: 2, chunkValues: chunk)
            return Array(AnyIterator { upload.next() })
        }
    }

    /// Feeds `frames` to a download of the state's size; returns the values and the first error.
    func download(_ frames: [Frame], maxChunk: Int = 64) -> (values: [Float], error: (any Error)?, complete: Bool) {
        var values = [Float](repeating: .nan, count: state.count)
        var download = StateDownload(count: state.count, maxChunkValues: maxChunk)
        var failure: (any Error)?
        values.withUnsafeMutableBufferPointer { out in
            do { for frame in frames { _ = try download.received(frame, into: out) } } catch { failure = error }
        }
        return (values, failure, download.isComplete)
    }

    func testTheWholeStateArrivesInChunksAndCompletes() {
        let all = frames()
        XCTAssertEqual(all.count, 16 + 1)
        XCTAssertEqual(all.last?.header.type, .stateEnd)
        XCTAssertTrue(all.dropLast().allSatisfy { $0.header.type == .stateChunk && $0.header.count <= 64 })
        let (values, error, complete) = download(all)
        XCTAssertNil(error)
        XCTAssertTrue(complete)
        XCTAssertEqual(values, state)
    }

    func testChunksOutOfOrderRepeatedOrTooLargeAreRefused() {
        var all = frames()
        all.swapAt(2, 3)
        XCTAssertTrue("\(download(all).error!)".contains("expected the one at 128"))
        var repeated = frames()
        repeated.insert(repeated[0], at: 1)
        XCTAssertTrue("\(download(repeated).error!)".contains("expected the one at 64"))
        // Chunks larger than the receiver allows are refused, whatever the sender chose.
        XCTAssertTrue("\(download(frames(chunk: 128)).error!)".contains("exceeds the limit of 64"))
    }

    func testAnAlteredValueOrAnEarlyEndIsCaughtByTheWholeChecksum() {
        var all = frames()
        // Another payload of the right size: the frame's own CRC is computed on the wire, so only
        // the end's checksum over every value can catch a chunk that was altered before framing.
        var altered = ByteBuffer()
        altered.writeBytes([UInt8](repeating: 0, count: 64 * 4))
        all[5] = Frame(header: all[5].header, payload: altered)
        let (_, error, complete) = download(all)
        XCTAssertFalse(complete)
        guard case .checksumMismatch? = error as? WireError else { return XCTFail("\(String(describing: error))") }
        var early = frames()
        early.remove(at: early.count - 2)
        XCTAssertTrue("\(download(early).error!)".contains("state ended after 960 values"))
    }

    func testOtherFramesAndFramesAfterTheEndAreRefused() {
        var all = frames()
        all.insert(Frame(header: FrameHeader(type: .data, runID: 5, sender: 2), payload: ByteBuffer()), at: 1)
        XCTAssertTrue("\(download(all).error!)".contains("unexpected data message while downloading state (64 of 1000 values)"))
        var twice = frames()
        twice.append(twice.last!)
        XCTAssertTrue("\(download(twice).error!)".contains("the state download is complete"))
    }
}
