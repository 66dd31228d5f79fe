"""Primitive results (PrimitiveResult, PubResult, DataBin, BitArray), counts and finished jobs
(which come back as real PrimitiveJobs holding the result)."""

from __future__ import annotations

from qiskit.primitives import BitArray, DataBin, PrimitiveResult, PubResult, SamplerPubResult
from qiskit.primitives.base.base_primitive_job import BasePrimitiveJob
from qiskit.primitives.primitive_job import PrimitiveJob
from qiskit.result import Counts

from actors.verify.sandbox.codecs.arrays import decode_array, encode_array
from actors.verify.sandbox.codecs.registry import Codec, register


def _databin_encode(value: DataBin, child) -> dict:
    return {"fields": {name: child(getattr(value, name)) for name in value}, "shape": list(value.shape)}


def _databin_decode(data, child) -> DataBin:
    fields = data["fields"]
    if type(fields) is not dict or not all(type(name) is str and name.isidentifier() for name in fields):
        raise ValueError("bad DataBin fields")
    return DataBin(**{name: child(value) for name, value in fields.items()}, shape=tuple(int(n) for n in data["shape"]))


def _metadata(value, child):
    return child(dict(value))


register(Codec("bitarray", (BitArray,), lambda v, _: {"array": encode_array(v.array), "num_bits": int(v.num_bits)},
               lambda d, _: BitArray(decode_array(d["array"]), int(d["num_bits"]))))
register(Codec("databin", (DataBin,), _databin_encode, _databin_decode))
register(Codec("sampler_pub_result", (SamplerPubResult,),
               lambda v, child: {"data": child(v.data), "metadata": _metadata(v.metadata, child)},
               lambda d, child: SamplerPubResult(child(d["data"]), metadata=child(d["metadata"]))))
register(Codec("pub_result", (PubResult,),
               lambda v, child: {"data": child(v.data), "metadata": _metadata(v.metadata, child)},
               lambda d, child: PubResult(child(d["data"]), metadata=child(d["metadata"]))))
register(Codec("primitive_result", (PrimitiveResult,),
               lambda v, child: {"pubs": [child(pub) for pub in v], "metadata": _metadata(v.metadata, child)},
               lambda d, child: PrimitiveResult([child(pub) for pub in d["pubs"]], metadata=child(d["metadata"]))))
register(Codec("counts", (Counts,), lambda v, child: {"items": child(dict(v))}, lambda d, child: Counts(child(d["items"]))))


def finished_job(result) -> PrimitiveJob:
    """A genuine, already finished PrimitiveJob whose result is ``result``."""
    job = PrimitiveJob(lambda: result)
    job._submit()
    job.result()
    return job


register(Codec("finished_job", (BasePrimitiveJob,), lambda v, child: {"result": child(v.result())},
               lambda d, child: finished_job(child(d["result"]))))
