# readme_example_check.cmake — run as `cmake -P`: fails when the README's code example
# differs from examples/quickstart.cpp, which the tests build and run.
file(READ "${SOURCE_DIR}/README.md" readme)
file(READ "${SOURCE_DIR}/examples/quickstart.cpp" example)
string(REGEX MATCH "<!-- quickstart begin[^\n]*\n```cpp\n(.*)```\n<!-- quickstart end -->" _ "${readme}")
if(NOT CMAKE_MATCH_1 STREQUAL example)
  message(FATAL_ERROR "README.md's quickstart block differs from examples/quickstart.cpp: keep them the same")
endif()
