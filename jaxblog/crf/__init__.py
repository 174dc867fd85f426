from jaxblog.crf.forward import score, log_partition, log_likelihood, marginals
from jaxblog.crf.viterbi import viterbi, kbest_viterbi
