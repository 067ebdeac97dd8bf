import ArgumentParser
import Glibc

/// `mmapkit-bench`: the `bench` subcommand of `mmapkit`, built as its own executable so that
/// Foundation (one of the implementations it measures) is not loaded by the page-cache
/// commands, which start in a millisecond like vmtouch. `mmapkit bench ARGS` runs it.
@main
enum BenchMain {
    static func main() {
        do {
            var command = try Bench.parseAsRoot()
            try command.run()
        } catch {
            if Bench.exitCode(for: error) == .validationFailure {
                let message = Bench.fullMessage(for: error) + "\n"
                _ = message.utf8CString.withUnsafeBufferPointer { write(STDERR_FILENO, $0.baseAddress, $0.count - 1) }
                exit(2)
            }
            Bench.exit(withError: error)
        }
    }
}
