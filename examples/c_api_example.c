/* c_api_example.c — porta from plain C: list the devices, multiply two matrices on the
 * default device with a fused bias + GELU, and show how an error comes back. */
#include <porta/porta.h>

#include <stdio.h>

/* Prints the failed call and its message, then leaves through the cleanup label. */
#define CHECK(call)                                                                            \
  do {                                                                                         \
    porta_status status_ = (call);                                                             \
    if (status_ != PORTA_OK) {                                                                 \
      fprintf(stderr, "%s failed: %s: %s\n", #call, porta_status_name(status_), porta_last_error()); \
      goto cleanup;                                                                            \
    }                                                                                          \
  } while (0)

int main(void) {
  int exit_code = 1;
  size_t count = 0;
  porta_device device = NULL;
  porta_tensor a = NULL, b = NULL, bias = NULL, c = NULL;
  const int64_t shape_a[2] = {2, 3}, shape_b[2] = {3, 2}, shape_bias[1] = {2};
  const float host_a[6] = {1, 2, 3, 4, 5, 6};
  const float host_b[6] = {1, 0, 0, 1, 1, 1};
  const float host_bias[2] = {-10, 0};
  float host_c[4];
  porta_matmul_options options;

  int major = 0, minor = 0, patch = 0;
  porta_version(&major, &minor, &patch);
  printf("porta %d.%d.%d (header %s)\n", major, minor, patch, PORTA_VERSION_STRING);
  CHECK(porta_device_count(&count));
  for (size_t i = 0; i < count; ++i) {
    porta_device_info info;
    porta_device_info_init(&info);
    CHECK(porta_device_at(i, &device));
    CHECK(porta_device_get_info(device, &info));
    printf("  %-9s %s (%s)\n", info.id, info.name, info.vendor);
  }

  CHECK(porta_device_default(&device));
  CHECK(porta_tensor_from_host(device, PORTA_F32, shape_a, 2, host_a, sizeof host_a, &a));
  CHECK(porta_tensor_from_host(device, PORTA_F32, shape_b, 2, host_b, sizeof host_b, &b));
  CHECK(porta_tensor_from_host(device, PORTA_F32, shape_bias, 1, host_bias, sizeof host_bias, &bias));
  porta_matmul_options_init(&options);
  options.bias = bias;
  options.epilogue = PORTA_EPILOGUE_GELU;
  CHECK(porta_matmul(a, b, &options, &c)); /* gelu(a b + bias) = gelu([[-6, 5], [0, 11]]) */
  CHECK(porta_tensor_to_host(c, host_c, sizeof host_c));
  printf("gelu(a b + bias) = [[%.4f, %.4f], [%.4f, %.4f]]\n", host_c[0], host_c[1], host_c[2], host_c[3]);

  /* Bad input is a status and a message, never a crash: here a buffer of the wrong size. */
  if (porta_tensor_to_host(c, host_c, 3 * sizeof(float)) == PORTA_ERROR_INVALID_ARGUMENT) {
    printf("as expected: %s\n", porta_last_error());
    exit_code = 0;
  } else {
    fprintf(stderr, "a read of the wrong size was not refused\n");
  }

cleanup:
  porta_tensor_free(a);
  porta_tensor_free(b);
  porta_tensor_free(bias);
  porta_tensor_free(c);
  return exit_code;
}
