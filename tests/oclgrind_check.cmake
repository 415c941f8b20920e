# oclgrind_check.cmake — run as `cmake -P`: runs a test binary under Oclgrind, which
# simulates an OpenCL device and checks every kernel's memory accesses (out of bounds),
# data races between work-items and API use. A failed test or any Oclgrind message fails.
# Variables: OCLGRIND, TEST_BINARY, FILTER, LOG.
file(REMOVE "${LOG}")
execute_process(COMMAND "${OCLGRIND}" --check-api --data-races --max-errors 20 --log "${LOG}" "${TEST_BINARY}" "--gtest_filter=${FILTER}"
                RESULT_VARIABLE result)
set(messages "")
if(EXISTS "${LOG}")
  file(READ "${LOG}" messages)
endif()
if(NOT result EQUAL 0 OR NOT messages STREQUAL "")
  message(FATAL_ERROR "under Oclgrind: exit status ${result}\n${messages}")
endif()
