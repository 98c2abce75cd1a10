// Shared by the CLI tests: the UsageError message parse_cli gives, or "".
#pragma once

#include <string>
#include <vector>

#include "vmm/cli.h"

namespace vmm {

inline std::string usage_error(const std::vector<std::string>& args) {
  try {
    parse_cli(args);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

}  // namespace vmm
