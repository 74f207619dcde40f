import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A fixed set of worker threads that run the parts of one parallel loop at a time.
///
/// Dispatch's `concurrentPerform` allocates on every call; a training step makes hundreds of
/// parallel calls and must allocate nothing, so kernels use this team instead. Jobs are passed as
/// small value types (an existential with inline storage), never as closures. The caller runs
/// part 0 itself; workers 1..<size wait on a condition variable between jobs. If the team is
/// already busy (another thread is using it), the caller runs every part itself, in order.
public final class ThreadTeam: @unchecked Sendable {
    /// Threads that take part in a job, the caller included.
    public let size: Int

    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let busy = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let start = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let done = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Guarded by `lock`.
    private var job: (any TeamJob)?
    private var parts = 0
    private var generation = 0
    private var pending = 0

    private init(size: Int) {
        self.size = size
        pthread_mutex_init(lock, nil)
        pthread_mutex_init(busy, nil)
        pthread_cond_init(start, nil)
        pthread_cond_init(done, nil)
        for index in 1..<max(size, 1) {
            let box = Unmanaged.passRetained(WorkerStart(team: self, index: index))
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                let start = Unmanaged<WorkerStart>.fromOpaque(raw!).takeRetainedValue()
                start.team.workerLoop(index: start.index)
            }, box.toOpaque())
            precondition(rc == 0, "[ThreadTeam] pthread_create failed with \(rc)")
            pthread_detach(thread)
        }
    }

    private final class WorkerStart {
        let team: ThreadTeam
        let index: Int
        init(team: ThreadTeam, index: Int) { self.team = team; self.index = index }
    }

    /// Runs `job.runPart(part)` for every part in `0..<parts` and returns when all are done.
    func run(parts requested: Int, _ work: some TeamJob) {
        let n = min(requested, size)
        if n <= 1 || pthread_mutex_trylock(busy) != 0 {
            for part in 0..<requested { work.runPart(part) }
            return
        }
        pthread_mutex_lock(lock)
        job = work
        parts = n
        pending = size - 1
        generation &+= 1
        pthread_cond_broadcast(start)
        pthread_mutex_unlock(lock)
        work.runPart(0)
        pthread_mutex_lock(lock)
        while pending > 0 { pthread_cond_wait(done, lock) }
        job = nil
        pthread_mutex_unlock(lock)
        pthread_mutex_unlock(busy)
    }

    private func workerLoop(index: Int) -> Never {
        var seen = 0
        while true {
            pthread_mutex_lock(lock)
            while generation == seen { pthread_cond_wait(start, lock) }
            seen = generation
            pthread_mutex_unlock(lock)
            perform(index)
            pthread_mutex_lock(lock)
            pending -= 1
            if pending == 0 { pthread_cond_signal(done) }
            pthread_mutex_unlock(lock)
        }
    }

    /// Runs this worker's part of the current job, if it has one.
    private func perform(_ index: Int) {
        pthread_mutex_lock(lock)
        let work = index < parts ? job : nil
        pthread_mutex_unlock(lock)
        work?.runPart(index)
    }

    private static let registry = Mutex<[Int: ThreadTeam]>([:])

    /// The process-wide team of `size` threads, created on first use and kept for the process.
    public static func shared(size: Int) -> ThreadTeam {
        registry.withLock { teams in
            if let team = teams[size] { return team }
            let team = ThreadTeam(size: size)
            teams[size] = team
            return team
        }
    }
}

/// A job the team runs part by part; implementations hold pointers only, so they fit inline.
protocol TeamJob {
    func runPart(_ part: Int)
}
