#include "libtorch/model/rnn/decoder_recurrence.h"

#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include "kernels/kernels.h"
#include "libtorch/model/ops.h"
#include "libtorch/model/rnn/lstm_recurrence.h"

namespace s2s {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Positions of the differentiable inputs in the flat list handed to autograd.
struct Slots {
  int64_t L;
  int64_t x_gates() const { return 0; }
  int64_t h(int64_t l) const { return 1 + l; }
  int64_t c(int64_t l) const { return 1 + L + l; }
  int64_t keys() const { return 1 + 2 * L; }
  int64_t memory() const { return 2 + 2 * L; }
  int64_t w(int64_t l) const { return 3 + 2 * L + l; }
  int64_t bias(int64_t l) const { return 3 + 3 * L + (l - 1); }  // l >= 1
  int64_t w_combine() const { return 2 + 4 * L; }
  int64_t count() const { return 3 + 4 * L; }
};

// One position's attention for the first n sentences: query [n, H] (compute type C) -> weights [n, S],
// context [n, M]; keys, memory and mask hold every sentence. T: the storage type of keys and memory.
template <class T, class C>
void attend(const torch::Tensor& query, const torch::Tensor& keys, const torch::Tensor& memory,
            const torch::Tensor& mask, const torch::Tensor& weights, const torch::Tensor& context) {
  const auto S = keys.size(1), D = keys.size(2), M = memory.size(2);
  at::parallel_for(0, query.size(0), /*grain_size=*/8, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      kernels::attention(data_as<C>(query) + b * D, data_as<T>(keys) + b * S * D,
                         data_as<T>(memory) + b * S * M, mask.data_ptr<bool>() + b * S, 1, S, D, M,
                         data_as<C>(weights) + b * S, data_as<C>(context) + b * M);
    }
  });
}

// Its backward: from weights [n, S] and d_context [n, M] to d_query [n, H], d_scores [n, S].
template <class T, class C>
void attend_backward(const torch::Tensor& keys, const torch::Tensor& memory, const torch::Tensor& mask,
                     const torch::Tensor& weights, const torch::Tensor& d_context,
                     const torch::Tensor& d_query, const torch::Tensor& d_scores) {
  const auto S = keys.size(1), D = keys.size(2), M = memory.size(2);
  at::parallel_for(0, weights.size(0), /*grain_size=*/8, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      kernels::attention_backward(data_as<T>(keys) + b * S * D, data_as<T>(memory) + b * S * M,
                                  mask.data_ptr<bool>() + b * S, data_as<C>(weights) + b * S,
                                  data_as<C>(d_context) + b * M, S, D, M, data_as<C>(d_query) + b * D,
                                  data_as<C>(d_scores) + b * S);
    }
  });
}

// Dispatch on the storage dtype (float, bf16, double); the compute type follows (float, float, double).
template <class F>
void by_dtype(torch::ScalarType type, F&& f) {
  if (type == torch::kBFloat16) {
    f(uint16_t{}, float{});
  } else if (type == torch::kDouble) {
    f(double{}, double{});
  } else {
    f(float{}, float{});
  }
}

// The non-differentiable tensors, passed as one plain argument (autograd would track a tensor argument, and
// an undefined one, a mask left out, has no device to record).
struct Masks {
  torch::Tensor mask, drop_hidden, drop_out;  // see DecoderRecurrenceInputs
  std::vector<int64_t> active;                // [len], filled in: every position's real rows
};

// x [rows, cols] -> [cols] in x's dtype, summed in float32 or double. A bf16 sum(0, dtype=float) first
// converts all of x (15 ms a training step); a [1, rows] x [rows, cols] GEMM accumulates in float32 as it
// reads.
torch::Tensor column_sums(const torch::Tensor& x) {
  if (x.scalar_type() != torch::kBFloat16) return x.sum(0);
  return torch::mm(torch::ones({1, x.size(0)}, x.options()), x).view({x.size(1)});
}

// The flat indices t * batch + b of the rows that run, b < active[t]; undefined when every row runs.
torch::Tensor real_rows(const std::vector<int64_t>& active, int64_t batch) {
  if (active.back() == batch) return {};
  int64_t total = 0;
  for (const auto n : active) total += n;
  auto rows = torch::empty({total}, torch::kInt64);
  auto* r = rows.data_ptr<int64_t>();
  for (size_t t = 0; t < active.size(); ++t)
    for (int64_t b = 0; b < active[t]; ++b) *r++ = static_cast<int64_t>(t) * batch + b;
  return rows;
}

// x [len, batch, k] -> [rows, k]: the rows `real` lists (real_rows), or all of them.
torch::Tensor gather_rows(const torch::Tensor& x, const torch::Tensor& real) {
  const auto flat = x.view({-1, x.size(2)});
  return real.defined() ? flat.index_select(0, real) : flat;
}

// The first n rows of a position's [batch, ...] slice, and the padding rows after them.
torch::Tensor head(const torch::Tensor& x, int64_t n) {
  return x.narrow(0, 0, n);
}
void zero_tail(const torch::Tensor& x, int64_t n) {
  if (n < x.size(0)) x.narrow(0, n, x.size(0) - n).zero_();
}

class DecoderRecurrence : public torch::autograd::Function<DecoderRecurrence> {
 public:
  // in: the differentiable inputs in Slots order.
  static variable_list forward(AutogradContext* ctx, torch::TensorList in, const Masks& masks, int64_t layers,
                               bool input_feeding) {
    const auto &mask = masks.mask, &drop_hidden = masks.drop_hidden, &drop_out = masks.drop_out;
    const auto& active = masks.active;
    const Slots at{layers};
    const auto L = layers;
    const auto& xg = in[at.x_gates()];  // [len, batch, 4H]
    const auto len = xg.size(0), B = xg.size(1), H = xg.size(2) / 4;
    const auto& keys = in[at.keys()];  // [batch, S, H]
    const auto& memory = in[at.memory()];
    const auto S = keys.size(1), M = memory.size(2);
    const auto& wc = in[at.w_combine()];  // [O, M + H]
    const auto O = wc.size(0);
    const auto opt = xg.options();
    const auto copt = opt.dtype(xg.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat);

    // Per layer: recurrent inputs [len, batch, in_l], activated gates [len, batch, 4H], cells [len+1, B, H].
    // Padding rows of comb and weights are zeroed: the backward's key and memory gradients read them.
    std::vector<torch::Tensor> rec, act, cs;
    for (int64_t l = 0; l < L; ++l) {
      rec.push_back(torch::empty({len, B, in[at.w(l)].size(0)}, opt));
      act.push_back(torch::empty({len, B, 4 * H}, opt));
      cs.push_back(torch::empty({len + 1, B, H}, copt));
      cs[l][0].copy_(in[at.c(l)]);
    }
    auto comb = torch::empty({len, B, M + H}, opt);  // [context ; h_top] per position
    auto raw = torch::empty({len, B, O}, opt);       // tanh(W_c comb), before dropout
    auto out = torch::empty({len, B, O}, opt);       // the attentional vectors
    auto weights = torch::empty({len, B, S}, copt);  // attention weights
    auto context = torch::empty({B, M}, copt);
    std::vector<torch::Tensor> h;  // per layer [rows, H], rows >= this position's
    for (int64_t l = 0; l < L; ++l) h.push_back(in[at.h(l)]);
    torch::Tensor feed = torch::zeros({B, O}, opt);
    for (int64_t t = 0; t < len; ++t) {
      const auto n = active[static_cast<size_t>(t)];  // the real rows at t
      for (int64_t l = 0; l < L; ++l) {
        auto r = head(rec[l][t], n);  // [n, in_l] = [feed or the layer below ; own h]
        const auto K = r.size(1);
        if (l == 0 && input_feeding) r.narrow(1, 0, O).copy_(head(feed, n));
        if (l > 0) {
          r.narrow(1, 0, H).copy_(drop_hidden.defined() ? h[l - 1] * head(drop_hidden[t][l - 1], n)
                                                        : h[l - 1]);
        }
        r.narrow(1, K - H, H).copy_(head(h[l], n));
        auto gates = torch::addmm(l == 0 ? head(xg[t], n) : in[at.bias(l)], r, in[at.w(l)]);  // [n, 4H]
        h[l] = torch::empty({n, H}, opt);
        lstm_cell_forward(gates, head(cs[l][t], n), head(cs[l][t + 1], n), h[l], head(act[l][t], n));
      }
      auto cb = head(comb[t], n);  // [n, M + H]
      cb.narrow(1, M, H).copy_(h[L - 1]);
      const auto query = h[L - 1].to(copt.dtype()).contiguous();
      by_dtype(xg.scalar_type(), [&](auto t_, auto c_) {
        attend<decltype(t_), decltype(c_)>(query, keys, memory, mask, head(weights[t], n), head(context, n));
      });
      cb.narrow(1, 0, M).copy_(head(context, n));
      auto rw = head(raw[t], n);  // products written in place, not copied over
      torch::mm_out(rw, cb, wc.t()).tanh_();
      feed = head(out[t], n);
      if (drop_out.defined()) {
        torch::mul_out(feed, rw, head(drop_out[t], n));
      } else {
        feed.copy_(rw);
      }
      for (const auto& x : {comb[t], weights[t], out[t]}) zero_tail(x, n);
    }
    std::vector<torch::Tensor> saved{keys, memory, wc, comb, raw, weights, mask};
    for (int64_t l = 0; l < L; ++l) saved.insert(saved.end(), {in[at.w(l)], rec[l], act[l], cs[l]});
    ctx->saved_data["tensors"] = saved;
    ctx->saved_data["drop_hidden"] = drop_hidden;
    ctx->saved_data["drop_out"] = drop_out;
    ctx->saved_data["active"] = active;
    ctx->saved_data["layers"] = layers;
    ctx->saved_data["input_feeding"] = input_feeding;
    return {out};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads);
};

variable_list DecoderRecurrence::backward(AutogradContext* ctx, variable_list grads) {
  const auto saved = ctx->saved_data["tensors"].toTensorVector();
  const auto drop_hidden = ctx->saved_data["drop_hidden"].toTensor();
  const auto drop_out = ctx->saved_data["drop_out"].toTensor();
  const auto L = ctx->saved_data["layers"].toInt();
  const bool input_feeding = ctx->saved_data["input_feeding"].toBool();
  const auto &keys = saved[0], &memory = saved[1], &wc = saved[2], &comb = saved[3], &raw = saved[4];
  const auto &weights = saved[5], &mask = saved[6];
  auto w = [&](int64_t l) -> const torch::Tensor& { return saved[static_cast<size_t>(7 + 4 * l)]; };
  auto rec = [&](int64_t l) -> const torch::Tensor& { return saved[static_cast<size_t>(8 + 4 * l)]; };
  auto act = [&](int64_t l) -> const torch::Tensor& { return saved[static_cast<size_t>(9 + 4 * l)]; };
  auto cs = [&](int64_t l) -> const torch::Tensor& { return saved[static_cast<size_t>(10 + 4 * l)]; };
  const auto len = comb.size(0), B = comb.size(1), S = keys.size(1), M = memory.size(2);
  const auto H = comb.size(2) - M, O = wc.size(0);
  const auto dtype = comb.scalar_type(), ctype = weights.scalar_type();
  const auto opt = comb.options(), copt = opt.dtype(ctype);

  const auto active = ctx->saved_data["active"].toIntVector();
  const auto d_out = grads[0].defined() ? grads[0].to(ctype) : torch::zeros({len, B, O}, copt);
  // Per layer: the gate gradients, and the carries from position t + 1 (full [batch, H]: a row joins when
  // its last position comes, and its carries are still zero then). The padding rows of x_gates', the
  // context's and the scores' gradients are zeroed: they are returned or multiplied over all positions.
  std::vector<torch::Tensor> d_gates, dh_next, dc_next, dc_spare;
  for (int64_t l = 0; l < L; ++l) {
    d_gates.push_back(torch::empty({len, B, 4 * H}, opt));
    dh_next.push_back(torch::zeros({B, H}, copt));
    dc_next.push_back(torch::zeros({B, H}, copt));
    dc_spare.push_back(torch::zeros({B, H}, copt));
  }
  auto d_pre = torch::empty({len, B, O}, opt);       // d tanh input, for W_c's gradient
  auto d_context = torch::empty({len, B, M}, copt);  // for the memory's gradient
  auto d_scores = torch::empty({len, B, S}, copt);   // for the keys' gradient
  auto d_query = torch::empty({B, H}, copt);
  auto d_feed = torch::zeros({B, O}, copt);
  for (int64_t t = len - 1; t >= 0; --t) {
    const auto n = active[static_cast<size_t>(t)];
    auto d_o = head(d_out[t], n) + head(d_feed, n);  // [n, O]
    if (drop_out.defined()) d_o.mul_(head(drop_out[t], n));
    const auto r = head(raw[t], n).to(ctype);
    const auto dp = head(d_pre[t], n);
    dp.copy_(d_o * (1 - r * r));
    const auto d_comb = torch::mm(dp, wc).to(ctype);  // [n, M + H]
    head(d_context[t], n).copy_(d_comb.narrow(1, 0, M));
    by_dtype(dtype, [&](auto t_, auto c_) {
      attend_backward<decltype(t_), decltype(c_)>(keys, memory, mask, head(weights[t], n),
                                                  head(d_context[t], n), head(d_query, n),
                                                  head(d_scores[t], n));
    });
    torch::Tensor dh = d_comb.narrow(1, M, H) + head(d_query, n);  // the top layer's h from outside the stack
    for (int64_t l = L - 1; l >= 0; --l) {
      dh = dh + head(dh_next[l], n);
      const auto dg = head(d_gates[l][t], n);  // [n, 4H]
      lstm_cell_backward(head(act(l)[t], n), head(cs(l)[t], n), head(cs(l)[t + 1], n),
                         dh.to(dtype).contiguous(), head(dc_next[l], n), dg, head(dc_spare[l], n));
      std::swap(dc_next[l], dc_spare[l]);
      const auto d_rec = torch::mm(dg, w(l).t()).to(ctype);  // [n, in_l]
      head(dh_next[l], n).copy_(d_rec.narrow(1, d_rec.size(1) - H, H));
      if (l > 0) {
        dh = d_rec.narrow(1, 0, H);
        if (drop_hidden.defined()) dh = dh * head(drop_hidden[t][l - 1], n);
      } else if (input_feeding) {
        head(d_feed, n).copy_(d_rec.narrow(1, 0, O));
      }
      if (l == 0) zero_tail(d_gates[0][t], n);  // x_gates' gradient
    }
    for (const auto& x : {d_context[t], d_scores[t]}) zero_tail(x, n);
  }
  const Slots at{L};
  variable_list g(static_cast<size_t>(at.count() + 3));  // + the three plain arguments
  auto slot = [&](int64_t i) -> torch::Tensor& { return g[static_cast<size_t>(i)]; };
  slot(at.x_gates()) = d_gates[0];
  // The weight gradients: one GEMM over the rows that ran at any position (gathered: cheaper than
  // multiplying the padding's zeros).
  const auto real = real_rows(active, B);
  for (int64_t l = 0; l < L; ++l) {
    const auto dg = gather_rows(d_gates[l], real);  // [rows, 4H]
    slot(at.h(l)) = dh_next[l];
    slot(at.c(l)) = dc_next[l];
    slot(at.w(l)) = torch::mm(gather_rows(rec(l), real).t(), dg);  // [in_l, 4H]
    if (l > 0) slot(at.bias(l)) = column_sums(dg);
  }
  slot(at.w_combine()) = torch::mm(gather_rows(d_pre, real).t(), gather_rows(comb, real));  // [O, M + H]
  const auto query = comb.narrow(2, M, H).to(ctype).permute({1, 0, 2});                     // [batch, len, H]
  slot(at.keys()) = torch::bmm(d_scores.permute({1, 2, 0}), query).to(dtype);               // [batch, S, H]
  slot(at.memory()) = torch::bmm(weights.permute({1, 2, 0}), d_context.permute({1, 0, 2})).to(dtype);
  return g;
}

}  // namespace

std::vector<int64_t> active_rows(const torch::Tensor& tgt_in, int64_t pad_id) {
  const auto tokens = tgt_in.to(torch::kCPU, torch::kInt64).contiguous();
  const auto B = tokens.size(0), len = tokens.size(1);
  const auto* ids = tokens.data_ptr<int64_t>();  // [batch, len]
  std::vector<int64_t> active(static_cast<size_t>(len), 1);
  for (int64_t b = 0; b < B; ++b) {
    int64_t n = len;  // this sentence's length: its last non-padding position + 1
    while (n > 1 && ids[b * len + n - 1] == pad_id) --n;
    for (int64_t t = 0; t < n; ++t) active[static_cast<size_t>(t)] = b + 1;
  }
  return active;
}

torch::Tensor decoder_recurrence(const DecoderRecurrenceInputs& in) {
  const auto L = static_cast<int64_t>(in.h.size());
  const auto& x = in.x_gates;
  TORCH_CHECK(recurrence_supported(x), "decoder_recurrence: x_gates must be a float CPU tensor, got ",
              x.options());
  TORCH_CHECK(L > 0 && in.c.size() == in.h.size() && in.w_rec.size() == in.h.size() &&
                  static_cast<int64_t>(in.bias.size()) == L - 1,
              "decoder_recurrence: ", in.h.size(), " h, ", in.c.size(), " c, ", in.w_rec.size(),
              " w_rec and ", in.bias.size(), " bias tensors do not describe one stack of layers");
  TORCH_CHECK(x.dim() == 3 && in.keys.dim() == 3 && in.memory.dim() == 3 && in.h[0].dim() == 2 &&
                  x.size(1) == in.keys.size(0) && x.size(2) == 4 * in.h[0].size(1) &&
                  in.keys.size(2) == in.h[0].size(1) &&
                  in.w_combine.size(1) == in.memory.size(2) + in.h[0].size(1),
              "decoder_recurrence: x_gates ", x.sizes(), ", h ", in.h[0].sizes(), ", keys ", in.keys.sizes(),
              ", memory ", in.memory.sizes(), " and w_combine ", in.w_combine.sizes(), " do not fit");
  const auto dtype = x.scalar_type();
  const auto cell = dtype == torch::kDouble ? torch::kDouble : torch::kFloat;
  const Slots at{L};
  std::vector<torch::Tensor> flat(static_cast<size_t>(at.count()));
  auto slot = [&](int64_t i) -> torch::Tensor& { return flat[static_cast<size_t>(i)]; };
  slot(at.x_gates()) = x.contiguous();
  for (int64_t l = 0; l < L; ++l) {
    const auto i = static_cast<size_t>(l);
    slot(at.h(l)) = in.h[i].to(dtype).contiguous();
    slot(at.c(l)) = in.c[i].to(cell).contiguous();
    slot(at.w(l)) = in.w_rec[i].to(dtype).contiguous();
    if (l > 0) slot(at.bias(l)) = in.bias[i - 1].to(dtype);
  }
  slot(at.keys()) = in.keys.to(dtype).contiguous();
  slot(at.memory()) = in.memory.to(dtype).contiguous();
  slot(at.w_combine()) = in.w_combine.to(dtype).contiguous();
  const auto len = x.size(0), batch = x.size(1);
  auto active = in.active.empty() ? std::vector<int64_t>(static_cast<size_t>(len), batch) : in.active;
  bool valid = static_cast<int64_t>(active.size()) == len;
  for (size_t t = 0; valid && t < active.size(); ++t)
    valid = active[t] >= 1 && active[t] <= batch && (t == 0 || active[t] <= active[t - 1]);
  TORCH_CHECK(valid, "decoder_recurrence: active ", at::IntArrayRef(in.active),
              " is not a non-increasing row count in [1, ", batch, "] for each of ", len, " positions");
  const Masks masks{in.mask.to(torch::kBool).contiguous(), in.drop_hidden, in.drop_out, std::move(active)};
  return DecoderRecurrence::apply(torch::TensorList(flat), masks, L, in.input_feeding)[0];
}

}  // namespace s2s
