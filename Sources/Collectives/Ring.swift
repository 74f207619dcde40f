import Dispatch
import NIOCore
import Transport
import Wire

/// One worker's place in a ring: its rank, the ring's size, and links to its neighbours.
///
/// Frames go to `next` and come from `previous`. With one worker both are nil.
public struct Ring: Sendable {
    public let rank: Int
    public let size: Int
    public let next: (any FrameLink)?
    public let previous: (any FrameLink)?
    /// Run id stamped on every frame.
    public let runID: UInt64
    /// Values per frame: small enough to pipeline, large enough to amortise headers (1 MB of fp32).
    public var pieceValues = 1 << 18
    /// Frames handed to `next` but not yet on the socket before we wait.
    public var window = 16
    /// Longest wait for one frame from `previous`.
    public var timeout: TimeAmount = .seconds(120)
    /// Bytes per second this worker's frames may leave at, nil for as fast as the link takes them:
    /// a collective in the background spread over the time it has leaves the link's peak to others.
    public var pace: Double?
    /// Counts the bytes this worker's frames put on the link, for the peak rate it reports.
    public var meter: SendRateMeter?

    public init(rank: Int, size: Int, next: (any FrameLink)?, previous: (any FrameLink)?, runID: UInt64) {
        precondition(size >= 1 && (0..<size).contains(rank), "[Ring] rank \(rank) of \(size)")
        precondition(size == 1 || (next != nil && previous != nil), "[Ring] a ring of \(size) needs both neighbours")
        self.rank = rank
        self.size = size
        self.next = next
        self.previous = previous
        self.runID = runID
    }

    /// Elements `c·L/n ..< (c+1)·L/n` of a vector of `length`: chunk c of n.
    func chunk(_ c: Int, length: Int) -> Range<Int> {
        let c = ((c % size) + size) % size
        return (c * length / size)..<((c + 1) * length / size)
    }

    /// Values per frame for a chunk of `count`: about an eighth of it (whole 4096-value blocks of
    /// the block codecs), at most `pieceValues`. Small chunks still go in several frames, so
    /// each hop forwards the first piece while the rest is on the wire instead of waiting for
    /// the whole chunk: on a 40 ms link that is most of the time of a few-MB all-reduce.
    public func pieceLength(for count: Int) -> Int {
        let eighth = (count / 8 + 4095) / 4096 * 4096
        return max(1, min(pieceValues, max(4096, eighth)))
    }

    /// A chunk cut into frames of at most `pieceValues`, and also at `split` (so that no frame
    /// mixes values sent through different codecs).
    func pieces(of range: Range<Int>, split: Int? = nil) -> [Range<Int>] {
        let parts: [Range<Int>]
        if let split, range.contains(split), split > range.lowerBound {
            parts = [range.lowerBound..<split, split..<range.upperBound]
        } else {
            parts = [range]
        }
        return parts.flatMap { part in
            let length = pieceLength(for: part.count)
            return stride(from: part.lowerBound, to: part.upperBound, by: length).map { $0..<min($0 + length, part.upperBound) }
        }
    }
}

/// Byte and time counts of one collective on one worker.
public struct CollectiveStats: Sendable, Codable, Equatable {
    /// Payload and header bytes this worker sent.
    public var bytesSent = 0
    public var bytesReceived = 0
    public var framesSent = 0
    public var seconds = 0.0

    public init() {}

    public static func += (a: inout CollectiveStats, b: CollectiveStats) {
        a.bytesSent += b.bytesSent
        a.bytesReceived += b.bytesReceived
        a.framesSent += b.framesSent
        a.seconds += b.seconds
    }
}

/// Sends frames to a link keeping at most `window` of them unwritten, counting bytes.
struct Sender {
    let link: any FrameLink
    let window: Int
    let pace: Double?
    let meter: SendRateMeter?
    private var pending: [EventLoopFuture<Void>] = []
    private(set) var stats = CollectiveStats()
    /// With a pace: when the next frame may leave (uptime ns).
    private var nextSlot: UInt64 = 0

    init(link: any FrameLink, window: Int, pace: Double? = nil, meter: SendRateMeter? = nil) {
        self.link = link
        self.window = window
        self.pace = pace
        self.meter = meter
    }

    /// A sender for `link` with the ring's window, pace and meter.
    init(link: any FrameLink, of ring: Ring) {
        self.init(link: link, window: ring.window, pace: ring.pace, meter: ring.meter)
    }

    mutating func post(_ frame: Frame) async throws {
        let bytes = FrameHeader.size + frame.payload.readableBytes
        if let pace, pace > 0 {
            let now = DispatchTime.now().uptimeNanoseconds
            if nextSlot > now { try await Task.sleep(nanoseconds: nextSlot - now) }
            nextSlot = max(now, nextSlot) + UInt64(Double(bytes) / pace * 1e9)
        }
        stats.bytesSent += bytes
        stats.framesSent += 1
        let sent = link.send(frame)
        if let meter { sent.whenSuccess { meter.record(bytes: bytes) } }
        pending.append(sent)
        if pending.count >= window { try await written(pending.removeFirst()) }
    }

    mutating func drain() async throws {
        for f in pending { try await written(f) }
        pending.removeAll()
    }

    /// Waits for a send; a failure that names no peer is put on the one we sent to.
    private func written(_ future: EventLoopFuture<Void>) async throws {
        do { try await future.get() } catch let error as TransportError { throw error } catch {
            throw RingFailure(error, peer: link.peerDescription, round: nil)
        }
    }
}

extension Ring {
    /// Receives the next frame from `previous` and checks it is the data frame we expect.
    func receiveData(round: UInt64, range: Range<Int>, codec: CodecID?, phase: String, stats: inout CollectiveStats) async throws -> Frame {
        let link = previous!
        let frame = try await link.receive(timeout: timeout, what: "\(phase) values \(range) of round \(round)")
        stats.bytesReceived += FrameHeader.size + frame.payload.readableBytes
        let h = frame.header
        guard h.type == .data, h.round == round, h.offset == UInt64(range.lowerBound), h.count == UInt64(range.count),
              codec == nil || h.codec == codec!
        else {
            throw TransportError.protocolViolation(
                peer: link.peerDescription,
                reason: "expected \(phase) data for values \(range) of round \(round), got \(h.type) for \(h.offset)+\(h.count) of round \(h.round) (\(h.codec))")
        }
        return frame
    }

    /// The same frame, payload byte for byte, sent on as ours (peers check who a frame is from).
    func forwarded(_ frame: Frame) -> Frame {
        var f = frame
        f.header.sender = UInt32(rank)
        return f
    }

    /// `vector[piece]` through `id`'s codec, as a frame payload.
    func encode(_ vector: UnsafeMutableBufferPointer<Float>, _ piece: Range<Int>, _ id: CodecID, rounding: RoundingMode,
                random: inout LaneRandom) -> ByteBuffer {
        let codec = id.codec
        var buffer = ByteBuffer()
        buffer.reserveCapacity(codec.encodedByteCount(count: piece.count))
        codec.encode(UnsafeBufferPointer(rebasing: vector[piece]), into: &buffer, rounding: rounding, random: &random)
        return buffer
    }

    func dataFrame(round: UInt64, range: Range<Int>, codec: CodecID, payload: ByteBuffer) -> Frame {
        Frame(header: FrameHeader(type: .data, codec: codec, runID: runID, round: round, sender: UInt32(rank),
                                  offset: UInt64(range.lowerBound), count: UInt64(range.count)),
              payload: payload)
    }
}
