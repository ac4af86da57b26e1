#include "daemon/cli.hpp"

int main(int argc, char** argv) { return tscb::daemon::Main(argc, argv); }
