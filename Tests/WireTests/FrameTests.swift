import Basics
import NIOCore
import TensorCore
import NIOEmbedded
import Wire
import XCTest

final class FrameTests: XCTestCase {
    func sampleFrame(payloadBytes: Int = 40) -> Frame {
        var payload = ByteBuffer()
        for i in 0..<payloadBytes { payload.writeInteger(UInt8(truncatingIfNeeded: i &* 37 &+ 11)) }
        let header = FrameHeader(type: .data, codec: .fp32, runID: 0xFEED_BEEF, round: 42, sender: 3,
                                 offset: 1000, count: UInt64(payloadBytes / 4), payloadLength: 0)
        return Frame(header: header, payload: payload)
    }

    func encoded(_ frame: Frame) -> ByteBuffer {
        var b = ByteBuffer()
        frame.write(to: &b)
        return b
    }

    func testCRC32CKnownValues() {
        XCTAssertEqual(Array("123456789".utf8).withUnsafeBytes { CRC32C.checksum($0) }, 0xE306_9283)
        XCTAssertEqual([UInt8](repeating: 0, count: 32).withUnsafeBytes { CRC32C.checksum($0) }, 0x8A91_36AA)
        XCTAssertEqual([UInt8](repeating: 0xFF, count: 32).withUnsafeBytes { CRC32C.checksum($0) }, 0x62A8_AB43)
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        bytes.withUnsafeBytes { all in
            let whole = CRC32C.checksum(all)
            for split in [0, 1, 7, 8, 9, 500, 1000] {
                let first = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: all[0..<split]))
                XCTAssertEqual(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: all[split...]), continuing: first), whole)
            }
        }
    }

    func testRoundTrip() throws {
        let frame = sampleFrame()
        var buffer = encoded(frame)
        XCTAssertEqual(buffer.readableBytes, FrameHeader.size + 40)
        var decoder = FrameDecoder()
        XCTAssertEqual(try decoder.decode(buffer: &buffer), frame)
        XCTAssertEqual(buffer.readableBytes, 0)
        XCTAssertNil(try decoder.decodeLast(buffer: &buffer, seenEOF: true))
    }

    func testEveryTruncationIsIncompleteThenAnErrorAtEndOfStream() throws {
        let full = encoded(sampleFrame())
        for length in 1..<full.readableBytes {
            var prefix = full.getSlice(at: 0, length: length)!
            var decoder = FrameDecoder()
            XCTAssertNil(try decoder.decode(buffer: &prefix), "prefix \(length)")
            XCTAssertThrowsError(try decoder.decodeLast(buffer: &prefix, seenEOF: true), "prefix \(length)") { error in
                guard case WireError.truncated = error else { return XCTFail("\(error)") }
            }
        }
    }

    func testRandomMutationsAreRejectedNeverCrash() throws {
        let original = sampleFrame(payloadBytes: 64)
        let full = encoded(original)
        var rng = SystemRandomNumberGenerator()
        var rejected = 0
        for trial in 0..<5000 {
            var bytes = Array(full.readableBytesView)
            let edits = 1 + trial % 4
            for _ in 0..<edits {
                let at = Int.random(in: 0..<bytes.count, using: &rng)
                bytes[at] = UInt8.random(in: 0...255, using: &rng)
            }
            var buffer = ByteBuffer(bytes: bytes)
            var decoder = FrameDecoder(limits: FrameLimits(maxPayloadBytes: 1 << 16))
            do {
                let frame = try decoder.decodeLast(buffer: &buffer, seenEOF: true)
                // Only a mutation that wrote back the same bytes may decode, and then to the original.
                XCTAssertEqual(bytes, Array(full.readableBytesView), "mutated frame accepted")
                XCTAssertEqual(frame, original)
            } catch is WireError {
                rejected += 1
            }
        }
        XCTAssertGreaterThan(rejected, 4900)
    }

    func testOversizedLengthIsRejectedFromTheHeaderAlone() {
        var frame = sampleFrame()
        frame.header.type = .probe
        var buffer = encoded(frame)
        buffer.setInteger(UInt32(1 << 30), at: buffer.readerIndex + 44)
        var header = buffer.getSlice(at: 0, length: FrameHeader.size)!
        var decoder = FrameDecoder(limits: FrameLimits(maxPayloadBytes: 1 << 20))
        XCTAssertThrowsError(try decoder.decode(buffer: &header)) {
            XCTAssertEqual($0 as? WireError, .payloadTooLarge(length: 1 << 30, limit: 1 << 20))
        }
    }

    func testDataPayloadMustMatchItsCodec() {
        var frame = sampleFrame(payloadBytes: 40)
        frame.header.count = 11 // fp32 needs 44 bytes for 11 values
        var buffer = encoded(frame)
        var decoder = FrameDecoder()
        XCTAssertThrowsError(try decoder.decode(buffer: &buffer)) {
            XCTAssertEqual($0 as? WireError, .payloadSizeMismatch(codec: "fp32", count: 11, expected: 44, actual: 40))
        }
    }

    func testHeaderFieldsAreValidated() {
        let full = encoded(sampleFrame())
        let cases: [(Int, UInt8, WireError)] = [
            (0, 0x00, .badMagic(0x0052_4942)),
            (4, 9, .unsupportedVersion(9)),
            (5, 99, .unknownMessageType(99)),
            (6, 0x05, .unknownCodec(0x05)),
            (7, 0x01, .reservedFlags(0x01)),
        ]
        for (offset, value, expected) in cases {
            var b = full
            b.setInteger(value, at: offset)
            var decoder = FrameDecoder()
            XCTAssertThrowsError(try decoder.decode(buffer: &b)) { XCTAssertEqual($0 as? WireError, expected) }
        }
    }

    func testPipelineOnEmbeddedChannel() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([
            ByteToMessageHandler(FrameDecoder()), MessageToByteHandler(FrameEncoder()),
        ])
        let frame = sampleFrame()
        try channel.writeOutbound(frame)
        let wire = try XCTUnwrap(channel.readOutbound(as: ByteBuffer.self))
        // Deliver it in two pieces, as TCP may.
        try channel.writeInbound(wire.getSlice(at: 0, length: 30)!)
        XCTAssertNil(try channel.readInbound(as: Frame.self))
        try channel.writeInbound(wire.getSlice(at: 30, length: wire.readableBytes - 30)!)
        XCTAssertEqual(try channel.readInbound(as: Frame.self), frame)
        var corrupt = wire
        corrupt.setInteger(UInt8(0xAB), at: FrameHeader.size + 3)
        XCTAssertThrowsError(try channel.writeInbound(corrupt)) {
            guard case WireError.checksumMismatch = $0 else { return XCTFail("\($0)") }
        }
    }
}
