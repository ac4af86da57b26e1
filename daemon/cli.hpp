#pragma once
// The command line: `ts-callbackd [run|check-config|migrate] [--config FILE]`.
// Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.

namespace tscb::daemon {

int Main(int argc, char** argv);

}  // namespace tscb::daemon
