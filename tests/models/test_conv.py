"""conv.conv2d_same: XLA's convolution, with the weight gradient as matrix products on CPU."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddgan_jax.models import conv

# Large enough to take the matrix-product weight gradient (4 * 32 * 32 rows, 64 x 128 channels).
BIG = ((4, 32, 32, 64), (3, 3, 64, 128))


def _inputs(x_shape, w_shape, seed=0):
  kx, kw, kg = jax.random.split(jax.random.PRNGKey(seed), 3)
  x = jax.random.normal(kx, x_shape)
  w = jax.random.normal(kw, w_shape) / np.sqrt(np.prod(w_shape[:3]))
  g = jax.random.normal(kg, x_shape[:3] + (w_shape[3],))
  return x, w, g


def _weight_grad_f64(x, g, k):
  """sum over batch and pixels of x[pixel + tap] g[pixel], in float64 numpy."""
  x, g = np.asarray(x, np.float64), np.asarray(g, np.float64)
  _, h, w, _ = x.shape
  p = k // 2
  xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
  return np.stack([np.stack([np.einsum('bhwc,bhwo->co', xp[:, i:i + h, j:j + w], g)
                             for j in range(k)]) for i in range(k)])


def test_the_big_shape_takes_the_matrix_products_and_a_small_one_does_not():
  x, w, _ = _inputs(*BIG)
  assert conv.matmul_weight_grad_pays(x.shape, w.shape)
  assert 'custom_vjp_call' in str(jax.make_jaxpr(conv.conv2d_same)(x, w))
  small_x, small_w, _ = _inputs((2, 8, 8, 64), (3, 3, 64, 128))
  assert not conv.matmul_weight_grad_pays(small_x.shape, small_w.shape)
  assert 'custom_vjp_call' not in str(jax.make_jaxpr(conv.conv2d_same)(small_x, small_w))


@pytest.mark.parametrize('k', [3, 5])
def test_weight_grad_by_matmuls_matches_float64(k):
  x, _, g = _inputs((2, 6, 7, 5), (k, k, 5, 4))
  got = conv.weight_grad_by_matmuls(x, g, k)
  np.testing.assert_allclose(np.asarray(got), _weight_grad_f64(x, g, k), rtol=1e-5, atol=1e-5)


def test_value_and_gradients_match_xla_and_float64():
  x, w, g = _inputs(*BIG)
  y, pull = jax.vjp(conv.conv2d_same, x, w)
  y_ref, pull_ref = jax.vjp(conv.xla_conv, x, w)
  np.testing.assert_array_equal(np.asarray(y), np.asarray(y_ref))
  (dx, dw), (dx_ref, dw_ref) = pull(g), pull_ref(g)
  np.testing.assert_array_equal(np.asarray(dx), np.asarray(dx_ref))
  exact = _weight_grad_f64(x, g, 3)
  scale = np.abs(exact).max()
  # As close to float64 as XLA's own rule is (float32 sums over 4,096 rows).
  assert np.abs(np.asarray(dw) - exact).max() / scale < 1e-5
  assert np.abs(np.asarray(dw_ref) - exact).max() / scale < 1e-5


def test_second_order_gradient_matches_xla():
  """The R1 penalty differentiates the input gradient with respect to the weights."""
  x, w, _ = _inputs(*BIG, seed=1)

  def r1(conv_fn):
    def penalty(w_):
      grad_x = jax.grad(lambda x_: jnp.sum(jnp.tanh(conv_fn(x_, w_))))(x)
      return jnp.sum(grad_x ** 2)
    return jax.jit(jax.value_and_grad(penalty))(w)

  (v, dw), (v_ref, dw_ref) = r1(conv.conv2d_same), r1(conv.xla_conv)
  np.testing.assert_allclose(float(v), float(v_ref), rtol=1e-5)
  np.testing.assert_allclose(np.asarray(dw), np.asarray(dw_ref), rtol=1e-4,
                             atol=1e-4 * float(np.abs(dw_ref).max()))


def test_bfloat16_gradients_stay_bfloat16():
  x, w, g = _inputs(*BIG)
  x, w, g = (a.astype(jnp.bfloat16) for a in (x, w, g))
  _, pull = jax.vjp(conv.conv2d_same, x, w)
  dx, dw = pull(g)
  assert dx.dtype == dw.dtype == jnp.bfloat16
  exact = _weight_grad_f64(x, g, 3)
  assert np.abs(np.asarray(dw, np.float32) - exact).max() / np.abs(exact).max() < 2e-2


def test_the_module_keeps_nn_conv_parameters_and_names():
  import flax.linen as nn

  class Two(nn.Module):
    @nn.compact
    def __call__(self, x):
      return conv.same_conv(4)(x) + conv.same_conv(4, kernel=3, use_bias=False)(x)

  x = jnp.ones((1, 5, 5, 3))
  params = Two().init(jax.random.PRNGKey(0), x)['params']
  assert jax.tree.map(jnp.shape, params) == {
      'Conv_0': {'kernel': (3, 3, 3, 4), 'bias': (4,)}, 'Conv_1': {'kernel': (3, 3, 3, 4)}}
  reference = nn.Conv(4, (3, 3), padding=((1, 1), (1, 1)))
  np.testing.assert_allclose(
      np.asarray(conv.same_conv(4).apply({'params': params['Conv_0']}, x)),
      np.asarray(reference.apply({'params': params['Conv_0']}, x)), rtol=1e-6, atol=1e-6)
  # nn.Conv's call reaches conv2d_same's gradient rule at a large shape.
  big, layer = jnp.ones(BIG[0]), conv.same_conv(BIG[1][3])
  big_params = layer.init(jax.random.PRNGKey(0), big)
  assert 'custom_vjp_call' in str(jax.make_jaxpr(lambda p: layer.apply(p, big))(big_params))


def test_the_hook_routes_only_plain_same_convolutions():
  x, w, _ = _inputs(*BIG)
  jaxpr = lambda **kw: str(jax.make_jaxpr(lambda x_, w_: conv.conv_general_dilated(
      x_, w_, kw.pop('strides', (1, 1)), kw.pop('padding', ((1, 1), (1, 1))),
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'), **kw))(x, w))
  assert 'custom_vjp_call' in jaxpr()
  assert 'custom_vjp_call' not in jaxpr(strides=(2, 2))
  assert 'custom_vjp_call' not in jaxpr(padding=((0, 0), (0, 0)))
  assert 'custom_vjp_call' not in jaxpr(rhs_dilation=(2, 2))
