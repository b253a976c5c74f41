// "Pakai lokasi saya" on /lapor: fills latitude and longitude from the browser, where the person allows it.
// Without JavaScript (or without geolocation) the button stays hidden and the fields are typed by hand.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("pakai-lokasi");
  const status = document.getElementById("lokasi-status");
  const lat = document.getElementById("lat");
  const lon = document.getElementById("lon");
  if (!button || !lat || !lon || !("geolocation" in navigator)) {
    return;
  }
  button.hidden = false;
  button.addEventListener("click", () => {
    status.textContent = "Mencari lokasi…";
    navigator.geolocation.getCurrentPosition(
      (position) => {
        lat.value = position.coords.latitude.toFixed(6);
        lon.value = position.coords.longitude.toFixed(6);
        status.textContent = "Lokasi terisi (ketelitian sekitar " + Math.round(position.coords.accuracy) + " m).";
      },
      () => {
        status.textContent = "Lokasi tidak dapat dibaca. Izinkan akses lokasi, atau isi lokasi dengan teks.";
      },
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 },
    );
  });
});
