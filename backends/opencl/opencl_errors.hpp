// opencl_errors.hpp — OpenCL error codes as their names, and the porta::Error they become.
#pragma once

#include <CL/cl.h>

#include <string>
#include <string_view>

#include "porta/error.hpp"

namespace porta::backend::opencl {

inline constexpr cl_int platform_not_found_khr = -1001;  // cl_khr_icd: the loader found no ICD

inline std::string_view error_name(cl_int code) {
  switch (code) {
#define PORTA_CL_ERROR(name) \
  case name: return #name;
    PORTA_CL_ERROR(CL_SUCCESS)
    PORTA_CL_ERROR(CL_DEVICE_NOT_FOUND)
    PORTA_CL_ERROR(CL_DEVICE_NOT_AVAILABLE)
    PORTA_CL_ERROR(CL_COMPILER_NOT_AVAILABLE)
    PORTA_CL_ERROR(CL_MEM_OBJECT_ALLOCATION_FAILURE)
    PORTA_CL_ERROR(CL_OUT_OF_RESOURCES)
    PORTA_CL_ERROR(CL_OUT_OF_HOST_MEMORY)
    PORTA_CL_ERROR(CL_PROFILING_INFO_NOT_AVAILABLE)
    PORTA_CL_ERROR(CL_MEM_COPY_OVERLAP)
    PORTA_CL_ERROR(CL_IMAGE_FORMAT_MISMATCH)
    PORTA_CL_ERROR(CL_IMAGE_FORMAT_NOT_SUPPORTED)
    PORTA_CL_ERROR(CL_BUILD_PROGRAM_FAILURE)
    PORTA_CL_ERROR(CL_MAP_FAILURE)
    PORTA_CL_ERROR(CL_MISALIGNED_SUB_BUFFER_OFFSET)
    PORTA_CL_ERROR(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
    PORTA_CL_ERROR(CL_COMPILE_PROGRAM_FAILURE)
    PORTA_CL_ERROR(CL_LINKER_NOT_AVAILABLE)
    PORTA_CL_ERROR(CL_LINK_PROGRAM_FAILURE)
    PORTA_CL_ERROR(CL_DEVICE_PARTITION_FAILED)
    PORTA_CL_ERROR(CL_KERNEL_ARG_INFO_NOT_AVAILABLE)
    PORTA_CL_ERROR(CL_INVALID_VALUE)
    PORTA_CL_ERROR(CL_INVALID_DEVICE_TYPE)
    PORTA_CL_ERROR(CL_INVALID_PLATFORM)
    PORTA_CL_ERROR(CL_INVALID_DEVICE)
    PORTA_CL_ERROR(CL_INVALID_CONTEXT)
    PORTA_CL_ERROR(CL_INVALID_QUEUE_PROPERTIES)
    PORTA_CL_ERROR(CL_INVALID_COMMAND_QUEUE)
    PORTA_CL_ERROR(CL_INVALID_HOST_PTR)
    PORTA_CL_ERROR(CL_INVALID_MEM_OBJECT)
    PORTA_CL_ERROR(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR)
    PORTA_CL_ERROR(CL_INVALID_IMAGE_SIZE)
    PORTA_CL_ERROR(CL_INVALID_SAMPLER)
    PORTA_CL_ERROR(CL_INVALID_BINARY)
    PORTA_CL_ERROR(CL_INVALID_BUILD_OPTIONS)
    PORTA_CL_ERROR(CL_INVALID_PROGRAM)
    PORTA_CL_ERROR(CL_INVALID_PROGRAM_EXECUTABLE)
    PORTA_CL_ERROR(CL_INVALID_KERNEL_NAME)
    PORTA_CL_ERROR(CL_INVALID_KERNEL_DEFINITION)
    PORTA_CL_ERROR(CL_INVALID_KERNEL)
    PORTA_CL_ERROR(CL_INVALID_ARG_INDEX)
    PORTA_CL_ERROR(CL_INVALID_ARG_VALUE)
    PORTA_CL_ERROR(CL_INVALID_ARG_SIZE)
    PORTA_CL_ERROR(CL_INVALID_KERNEL_ARGS)
    PORTA_CL_ERROR(CL_INVALID_WORK_DIMENSION)
    PORTA_CL_ERROR(CL_INVALID_WORK_GROUP_SIZE)
    PORTA_CL_ERROR(CL_INVALID_WORK_ITEM_SIZE)
    PORTA_CL_ERROR(CL_INVALID_GLOBAL_OFFSET)
    PORTA_CL_ERROR(CL_INVALID_EVENT_WAIT_LIST)
    PORTA_CL_ERROR(CL_INVALID_EVENT)
    PORTA_CL_ERROR(CL_INVALID_OPERATION)
    PORTA_CL_ERROR(CL_INVALID_GL_OBJECT)
    PORTA_CL_ERROR(CL_INVALID_BUFFER_SIZE)
    PORTA_CL_ERROR(CL_INVALID_MIP_LEVEL)
    PORTA_CL_ERROR(CL_INVALID_GLOBAL_WORK_SIZE)
    PORTA_CL_ERROR(CL_INVALID_PROPERTY)
    PORTA_CL_ERROR(CL_INVALID_IMAGE_DESCRIPTOR)
    PORTA_CL_ERROR(CL_INVALID_COMPILER_OPTIONS)
    PORTA_CL_ERROR(CL_INVALID_LINKER_OPTIONS)
    PORTA_CL_ERROR(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef PORTA_CL_ERROR
    case platform_not_found_khr: return "CL_PLATFORM_NOT_FOUND_KHR";
    default: return "unknown OpenCL error";
  }
}

// "CL_INVALID_VALUE (-30)"
inline std::string describe(cl_int code) { return std::string(error_name(code)) + " (" + std::to_string(code) + ")"; }

// Allocation failures are the caller's to handle (free something, use a smaller batch);
// every other failure is the runtime's.
inline ErrorKind error_kind(cl_int code) {
  if (code == CL_MEM_OBJECT_ALLOCATION_FAILURE || code == CL_OUT_OF_HOST_MEMORY) return ErrorKind::out_of_memory;
  return ErrorKind::backend_error;
}

// Throws when `code` is not CL_SUCCESS: "porta opencl: clFinish on opencl:0 failed: CL_... (-n)".
inline void check(cl_int code, std::string_view call, std::string_view device_id) {
  if (code == CL_SUCCESS) return;
  throw Error(error_kind(code), "porta opencl: " + std::string(call) + " on " + std::string(device_id) +
                                    " failed: " + describe(code));
}

}  // namespace porta::backend::opencl
