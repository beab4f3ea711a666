"""Smart charging: pure maths for gates, load balancing and OCPP charging profiles."""
