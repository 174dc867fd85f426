"""jaxblog: eight kexue.fm techniques (Su Jianlin, 2019-2020) in JAX.

The pure-function core lives in `jaxblog.{optim,crf,memm,vq,masks,decoding}`;
Flax models in `jaxblog.models`; the experiment harness in
`jaxblog.training`. Import submodules explicitly, e.g.
`from jaxblog import crf`.
"""

__version__ = "0.1.0"
