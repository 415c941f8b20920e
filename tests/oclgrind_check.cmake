# oclgrind_check.cmake — run as `cmake -P`: runs a test binary under Oclgrind, which
# simulates an OpenCL device and checks every kernel's memory accesses (out of bounds),
# data races between work-items and API use. A failed test, any Oclgrind message, or a
# filter that matched no test fails.
# Variables: OCLGRIND, TEST_BINARY, FILTER, LOG.
file(REMOVE "${LOG}")
execute_process(COMMAND "${OCLGRIND}" --check-api --data-races --max-errors 20 --log "${LOG}" "${TEST_BINARY}" "--gtest_filter=${FILTER}"
                RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
message("${output}")
set(messages "")
if(EXISTS "${LOG}")
  file(READ "${LOG}" messages)
endif()
if(NOT result EQUAL 0 OR NOT messages STREQUAL "")
  message(FATAL_ERROR "under Oclgrind: exit status ${result}\n${messages}")
endif()
if(NOT output MATCHES "\\[  PASSED  \\] [1-9]")
  message(FATAL_ERROR "under Oclgrind: the filter ${FILTER} ran no test")
endif()
