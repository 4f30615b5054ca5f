"""The optional model polish: lock, prompt, request, guard, cache, and the pool for many letters (litellm is
imported only here, and only when a polisher is made).
"""
