"""Secret masking: the variants (encoded forms) of a secret and a streaming redactor.

``tollgate.masking.variants`` computes what to look for, ``tollgate.masking.matcher`` finds
it fast, ``tollgate.masking.redactor`` replaces it in a byte stream that arrives in pieces,
and ``tollgate.masking.secrets`` is the set of secrets this process knows about.
"""
