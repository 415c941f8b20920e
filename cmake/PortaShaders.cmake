# PortaShaders.cmake — compiles kernels/<op>/vulkan*.comp to SPIR-V with glslc at build
# time, twice: with 16-bit storage (f16/bf16 tensors) and without (devices lacking it).

function(porta_compile_shaders out_inputs)
  file(GLOB shaders CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/kernels/*/vulkan*.comp")
  file(GLOB headers CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/kernels/*/*.h" "${PROJECT_SOURCE_DIR}/kernels/*/*.glsl")
  set(inputs "")
  set(files "")
  file(MAKE_DIRECTORY "${PROJECT_BINARY_DIR}/generated/spirv")  # glslc does not create it
  foreach(shader IN LISTS shaders)
    get_filename_component(op_dir "${shader}" DIRECTORY)
    get_filename_component(op "${op_dir}" NAME)
    get_filename_component(stem "${shader}" NAME_WE)  # vulkan or vulkan_<variant>
    string(REGEX REPLACE "^vulkan_?" "" variant "${stem}")
    set(name "${op}")
    if(variant)
      set(name "${op}_${variant}")
    endif()
    foreach(storage16 0 1)
      set(spv "${PROJECT_BINARY_DIR}/generated/spirv/${name}.s16_${storage16}.spv")
      add_custom_command(
        OUTPUT "${spv}"
        COMMAND ${Vulkan_GLSLC_EXECUTABLE} --target-env=vulkan1.2 -O -DPORTA_TARGET_GLSL -DPORTA_STORAGE16=${storage16}
                "-I${PROJECT_SOURCE_DIR}/kernels" -MD -MF "${spv}.d" -o "${spv}" "${shader}"
        DEPENDS "${shader}" ${headers}
        DEPFILE "${spv}.d"
        COMMENT "glslc ${name} (16-bit storage: ${storage16})")
      list(APPEND inputs "${name}.s16_${storage16}=${spv}")
      list(APPEND files "${spv}")
    endforeach()
  endforeach()
  set(${out_inputs} "${inputs}" PARENT_SCOPE)
  set(porta_spirv_files "${files}" PARENT_SCOPE)
endfunction()
