# Қазақша.
site-name = ortaq — ЕАЭО интеграцияланған ақпараттық жүйесі
skip-to-content = Мазмұнға өту
nav-main = Негізгі навигация
nav-home = Торап
nav-nsi = НАА
nav-api = API
language = Тіл
node-title = { $segment } торабы
node-intro = Еуразиялық экономикалық одақтың интеграцияланған ақпараттық жүйесінің торабы: уәкілетті органдардың ақпараттық жүйелерінен электрондық құжаттарды қабылдайды, оларға қол қояды және басқа мемлекеттерге қорғалған арналар арқылы жеткізеді.
participants-title = Тораптың қатысушылары
participants-none = Тораптың қатысушылары жоқ.
participant-address = Логикалық мекенжай
participant-name = Атауы
nsi-title = Нормативтік-анықтамалық ақпарат
nsi-intro = Осы торап сақтайтын анықтамалықтар мен жіктеуіштер, соңғы нұсқасында.
nsi-none = Торап әзірге бірде-бір анықтамалықты сақтамайды.
nsi-code = Коды
nsi-name = Атауы
nsi-version = Нұсқасы
nsi-published = Жарияланды
nsi-items = Жазбалар
nsi-items-count = { $count ->
    [one] { $n } жазба
   *[other] { $n } жазба
}
nsi-kind-resource = анықтамалық
nsi-kind-crosswalk = сәйкестік кестесі
item-code = Коды
item-name = Атауы
item-other-names = Басқа тілдерде
item-valid = Қолданылады
item-valid-from = { $from } бастап
item-valid-to = { $to } дейін
search-label = Код немесе атау бойынша іздеу
search-button = Іздеу
search-found = { $n } жазба табылды
page-prev = Алдыңғы
page-next = Келесі
page-of = { $pages } беттің { $page }-і
not-found-title = Бет табылмады
not-found-text = Мұнда мұндай бет жоқ. Мекенжайды тексеріңіз немесе тораптың басты бетінен бастаңыз.
unavailable-title = Деректер уақытша қолжетімсіз
unavailable-text = Торап деректерді оқи алмады. Кейінірек қайталап көріңіз.
api-link = API сипаттамасы (OpenAPI)
