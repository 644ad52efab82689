"""Service orders (居民点单-服务方接单): the service catalogue, eligibility and subsidy, dispatch to a
provider by coverage, skill, load and distance, acceptance, completion with proof, rating."""
