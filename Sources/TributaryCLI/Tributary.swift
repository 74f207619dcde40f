import ArgumentParser
import Foundation

@main
struct Tributary: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tributary",
        abstract: "Train transformer language models on the hardware you have.",
        subcommands: [TrainCommand.self, EvalCommand.self, GenerateCommand.self, ExportCommand.self, ImportCommand.self, LocalCommand.self, CoordinatorCommand.self, WorkerCommand.self, ExperimentCommand.self, DevicesCommand.self, PlanCommand.self, PlanCheckCommand.self, SimulateCommand.self, TokenizerCommand.self, DataCommand.self, BenchCommand.self, ReportCommand.self,
                      RingWorkerCommand.self]
    )

    /// Picks the right OpenBLAS kernels (which may execute the program again) before parsing the command.
    static func main() async {
        BLASCoreRestart.restartIfFallback()
        await main(nil)
    }
}
